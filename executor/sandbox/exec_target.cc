#include "executor/sandbox/exec_target.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace kiln::sandbox::internal {

std::optional<ExecTarget> InspectExecutable(const std::string& host_path) {
  int fd = ::open(host_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char head[4096];
  ssize_t n = ::pread(fd, head, sizeof head, 0);
  ExecTarget t;
  if (n >= 2 && head[0] == '#' && head[1] == '!') {
    std::string line(head + 2, static_cast<size_t>(std::min<ssize_t>(n, 256) - 2));
    line = line.substr(0, line.find('\n'));
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) {
      ::close(fd);
      return std::nullopt;
    }
    size_t e = line.find_first_of(" \t", b);
    t.script = true;
    t.interpreter = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (e != std::string::npos) {
      size_t ab = line.find_first_not_of(" \t", e);
      size_t ae = line.find_last_not_of(" \t\r");
      if (ab != std::string::npos && ae >= ab) t.script_arg = line.substr(ab, ae - ab + 1);
    }
    ::close(fd);
    return t;
  }
  if (n > 0) t.machine = ElfMachineName(reinterpret_cast<const unsigned char*>(head), static_cast<size_t>(n));
  if (n >= static_cast<ssize_t>(sizeof(Elf64_Ehdr)) && std::memcmp(head, ELFMAG, SELFMAG) == 0 &&
      head[EI_CLASS] == ELFCLASS64) {
    Elf64_Ehdr eh;
    std::memcpy(&eh, head, sizeof eh);
    for (int i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph;
      if (::pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) != sizeof ph) break;
      if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) continue;
      std::string interp(ph.p_filesz, '\0');
      if (::pread(fd, interp.data(), interp.size(), static_cast<off_t>(ph.p_offset)) != static_cast<ssize_t>(interp.size())) break;
      interp.resize(::strnlen(interp.c_str(), interp.size()));
      t.interpreter = interp;
      break;
    }
  }
  ::close(fd);
  return t;
}

std::string ElfMachineName(const unsigned char* head, size_t size) {
  if (size < 20 || std::memcmp(head, ELFMAG, SELFMAG) != 0) return "";
  const bool is64 = head[EI_CLASS] == ELFCLASS64, le = head[EI_DATA] == ELFDATA2LSB;
  if (!is64 && head[EI_CLASS] != ELFCLASS32) return "";
  if (!le && head[EI_DATA] != ELFDATA2MSB) return "";
  // e_machine sits at offset 18 in both classes, in the file's byte order.
  unsigned machine = le ? head[18] | (head[19] << 8) : (head[18] << 8) | head[19];
  switch (machine) {
    case EM_X86_64: return "x86_64";
    case EM_386: return "i386";
    case EM_AARCH64: return le ? "aarch64" : "aarch64_be";
    case EM_ARM: return le ? "arm" : "armeb";
    case EM_PPC64: return le ? "ppc64le" : "ppc64";
    case EM_PPC: return "ppc";
    case EM_S390: return is64 ? "s390x" : "";
    case EM_RISCV: return is64 ? "riscv64" : "riscv32";
    case EM_MIPS: return is64 ? (le ? "mips64el" : "mips64") : (le ? "mipsel" : "mips");
    case EM_LOONGARCH: return is64 ? "loongarch64" : "";
    default: return "";
  }
}

std::vector<ArgvSlot> EmulatedArgv(const std::string& qemu, const std::string& program, size_t guest_argc) {
  std::string path = program.empty() || program[0] == '/' ? program : "./" + program;
  std::vector<ArgvSlot> out = {{qemu}, {"-L"}, {"/"}, {"-0"}};
  out.push_back(guest_argc > 0 ? ArgvSlot{"", 0} : ArgvSlot{program});
  out.push_back({path});
  for (size_t i = 1; i < guest_argc; ++i) out.push_back({"", static_cast<int>(i)});
  return out;
}

}  // namespace kiln::sandbox::internal
