// The tracer's execve rewriting: the program, #! interpreters and the image's own dynamic loader are
// looked up inside the rootfs, another machine's program is handed to its qemu-user emulator, and the
// argument vector is rebuilt in the step's scratch area.
#include "executor/sandbox/ptrace_loop.h"

#if defined(__x86_64__)

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <vector>

#include "executor/sandbox/exec_target.h"

namespace kiln::sandbox::internal {

namespace {

constexpr int kMaxInterpreterDepth = 4;  // #! chains, as the kernel allows

}  // namespace

bool Tracer::HandleExecve(pid_t tid, ThreadState& t, user_regs_struct& regs, ScratchWriter& w, int* err) {
  std::optional<std::string> path = ReadPath(tid, regs.rdi);
  if (!path) {
    *err = EFAULT;  // never let an execve through untranslated
    return false;
  }
  std::string dir = "/";
  if (path->empty() || (*path)[0] != '/') {
    Dir cwd = GuestDir(tid, AT_FDCWD);
    if (!cwd.guest) {
      *err = cwd.error != 0 ? cwd.error : EACCES;
      return false;
    }
    dir = *cwd.guest;
  }
  // The argument vector, as pointers into the step's memory (new strings go to the scratch area).
  struct ArgvEntry {
    uint64_t ptr = 0;
    std::string text;  // used when ptr == 0
  };
  std::vector<ArgvEntry> args;
  bool rewritten = false;
  auto load_args = [&]() -> bool {
    for (uint64_t p = regs.rsi; p != 0; p += 8) {
      uint64_t v = 0;
      if (!ReadMemory(tid, p, &v, sizeof v)) return false;
      if (v == 0) break;
      args.push_back(ArgvEntry{v, {}});
      if (args.size() > (kScratchSize / 16)) return false;
    }
    return true;
  };

  std::string prog = *path;
  if (prog.rfind("/proc/", 0) == 0) {
    // Re-executing itself: the program, not the loader the kernel knows it by.
    pid_t tgid = TgidOf(tid);
    if (prog == "/proc/self/exe" || prog == "/proc/" + std::to_string(tgid) + "/exe") {
      auto it = exe_.find(tgid);
      if (it != exe_.end()) prog = it->second;
    }
  }
  PathTranslator::Translated host = tr_.ToHost(dir, prog, PathTranslator::Follow::kYes);
  if (host.error != 0) {
    *err = host.error;
    return false;
  }
  std::string prog_host = host.host;  // where `prog` is on the host, for /proc/self/exe
  for (int depth = 0;; ++depth) {
    // The kernel checks execute permission before it looks at the content; so do we, so that a
    // non-executable file fails with EACCES rather than run through an interpreter.
    if (::access(host.host.c_str(), X_OK) != 0) break;
    std::optional<internal::ExecTarget> target = internal::InspectExecutable(host.host);
    auto emulator = target && !target->script ? emulators_.find(target->machine) : emulators_.end();
    if (emulator != emulators_.end()) {
      // Another machine's program (static or dynamic: qemu loads its PT_INTERP itself, through us).
      if (!rewritten) {
        if (!load_args()) break;
        rewritten = true;
      }
      std::vector<ArgvEntry> next;
      for (const ArgvSlot& slot : EmulatedArgv(emulator->second, prog, args.size())) {
        next.push_back(slot.from_guest >= 0 ? args[static_cast<size_t>(slot.from_guest)] : ArgvEntry{0, slot.text});
      }
      args = std::move(next);
      host.host = emulator->second;  // the one host path an exec may name: not translated
      break;
    }
    if (!target || target->interpreter.empty()) break;  // static, unknown or unreadable: the kernel runs it
    if (!rewritten) {
      if (!load_args()) break;
      rewritten = true;
    }
    if (target->script) {
      if (depth >= kMaxInterpreterDepth) {
        *err = ELOOP;
        return false;
      }
      // As the kernel does: interpreter [arg] script-path-as-given remaining-args (argv[0] is dropped).
      std::vector<ArgvEntry> next;
      next.push_back(ArgvEntry{0, target->interpreter});
      if (!target->script_arg.empty()) next.push_back(ArgvEntry{0, target->script_arg});
      next.push_back(ArgvEntry{0, prog});
      for (size_t i = 1; i < args.size(); ++i) next.push_back(args[i]);
      args = std::move(next);
      prog = target->interpreter;
      host = tr_.ToHost(dir, prog, PathTranslator::Follow::kYes);
      if (host.error != 0) {
        *err = host.error;
        return false;
      }
      prog_host = host.host;
      continue;
    }
    // A dynamic ELF: run the image's own loader on it. glibc's ld.so (2.33 and later) and musl's take
    // --argv0; older loaders get the program path as argv[0].
    PathTranslator::Translated loader = tr_.ToHost(dir, target->interpreter, PathTranslator::Follow::kYes);
    if (loader.error != 0 || ::access(loader.host.c_str(), X_OK) != 0) break;  // let the kernel say ENOENT
    auto known = loader_takes_argv0_.find(loader.host);
    if (known == loader_takes_argv0_.end()) {
      bool found = false;
      if (FILE* f = ::fopen(loader.host.c_str(), "re")) {
        std::string body;
        char buf[65536];
        size_t n;
        while ((n = ::fread(buf, 1, sizeof buf, f)) > 0) body.append(buf, n);
        ::fclose(f);
        found = body.find("--argv0") != std::string::npos;
      }
      known = loader_takes_argv0_.emplace(loader.host, found).first;
    }
    std::vector<ArgvEntry> next;
    next.push_back(ArgvEntry{0, target->interpreter});
    if (known->second && !args.empty()) {
      next.push_back(ArgvEntry{0, "--argv0"});
      next.push_back(args[0]);
    }
    next.push_back(ArgvEntry{0, prog});
    for (size_t i = 1; i < args.size(); ++i) next.push_back(args[i]);
    args = std::move(next);
    host = loader;
    break;
  }
  t.exec_guest = tr_.ToGuest(prog_host).value_or(prog);
  regs.rdi = w.AddString(host.host);
  if (rewritten) {
    std::vector<uint64_t> ptrs;
    for (const ArgvEntry& a : args) ptrs.push_back(a.ptr != 0 ? a.ptr : w.AddString(a.text));
    ptrs.push_back(0);
    regs.rsi = w.AddPointers(ptrs);
  }
  return true;
}

}  // namespace kiln::sandbox::internal

#endif  // __x86_64__
