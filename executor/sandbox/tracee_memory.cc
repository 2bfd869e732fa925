#include "executor/sandbox/tracee_memory.h"

#if defined(__x86_64__)

#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>

namespace kiln::sandbox::internal {

unsigned long long& Arg(user_regs_struct& r, int i) {
  switch (i) {
    case 0: return r.rdi;
    case 1: return r.rsi;
    case 2: return r.rdx;
    case 3: return r.r10;
    case 4: return r.r8;
    default: return r.r9;
  }
}

bool GetRegs(pid_t tid, user_regs_struct* r) { return ::ptrace(PTRACE_GETREGS, tid, nullptr, r) == 0; }
bool SetRegs(pid_t tid, const user_regs_struct& r) { return ::ptrace(PTRACE_SETREGS, tid, nullptr, &r) == 0; }

bool ReadMemory(pid_t tid, uint64_t addr, void* data, size_t size) {
  iovec local{data, size}, remote{reinterpret_cast<void*>(addr), size};
  if (::process_vm_readv(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size)) return true;
  char* out = static_cast<char*>(data);
  for (size_t done = 0; done < size;) {
    uint64_t base = (addr + done) & ~uint64_t{7};
    errno = 0;
    long word = ::ptrace(PTRACE_PEEKDATA, tid, reinterpret_cast<void*>(base), nullptr);
    if (errno != 0) return false;
    size_t skip = addr + done - base;
    size_t n = std::min(size - done, sizeof word - skip);
    std::memcpy(out + done, reinterpret_cast<char*>(&word) + skip, n);
    done += n;
  }
  return true;
}

bool WriteMemory(pid_t tid, uint64_t addr, const void* data, size_t size) {
  iovec local{const_cast<void*>(data), size}, remote{reinterpret_cast<void*>(addr), size};
  if (::process_vm_writev(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size)) return true;
  const char* in = static_cast<const char*>(data);
  for (size_t done = 0; done < size;) {
    uint64_t base = (addr + done) & ~uint64_t{7};
    size_t skip = addr + done - base;
    size_t n = std::min(size - done, sizeof(long) - skip);
    long word = 0;
    if (skip != 0 || n != sizeof word) {  // a partial word: keep the bytes around it
      errno = 0;
      word = ::ptrace(PTRACE_PEEKDATA, tid, reinterpret_cast<void*>(base), nullptr);
      if (errno != 0) return false;
    }
    std::memcpy(reinterpret_cast<char*>(&word) + skip, in + done, n);
    if (::ptrace(PTRACE_POKEDATA, tid, reinterpret_cast<void*>(base), reinterpret_cast<void*>(word)) != 0) return false;
    done += n;
  }
  return true;
}

std::optional<std::string> ReadString(pid_t tid, uint64_t addr, size_t max) {
  std::string out;
  while (out.size() < max) {
    size_t chunk = 4096 - (addr % 4096);  // never cross into a page that may not be mapped
    char buf[4096];
    if (!ReadMemory(tid, addr, buf, chunk)) return std::nullopt;
    size_t len = ::strnlen(buf, chunk);
    out.append(buf, len);
    if (len < chunk) return out;
    addr += chunk;
  }
  return std::nullopt;
}

uint64_t ScratchWriter::AddString(const std::string& s) {
  uint64_t at = base_ + data_.size();
  data_.insert(data_.end(), s.begin(), s.end());
  data_.push_back('\0');
  return at;
}

uint64_t ScratchWriter::AddPointers(const std::vector<uint64_t>& ptrs) {
  while (data_.size() % 8 != 0) data_.push_back('\0');
  uint64_t at = base_ + data_.size();
  const char* p = reinterpret_cast<const char*>(ptrs.data());
  data_.insert(data_.end(), p, p + ptrs.size() * sizeof(uint64_t));
  return at;
}

bool ScratchWriter::Flush(pid_t tid) const {
  return data_.size() <= kScratchSize && WriteMemory(tid, base_, data_.data(), data_.size());
}

}  // namespace kiln::sandbox::internal

#endif  // __x86_64__
