// Reading and writing a traced process's registers and memory, for the ptrace sandbox. Internal.
#pragma once

#if defined(__x86_64__)

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::sandbox::internal {

/// The scratch area the tracer maps in each traced thread for rewritten paths and argument vectors.
inline constexpr uint64_t kScratchSize = 1 << 20;  // mapped lazily by the kernel

/// System call argument `i` (0–5) in `r`.
unsigned long long& Arg(user_regs_struct& r, int i);
bool GetRegs(pid_t tid, user_regs_struct* r);
bool SetRegs(pid_t tid, const user_regs_struct& r);

/// Tracee memory: process_vm_readv/writev, or word by word through ptrace itself when the kernel
/// refuses those (they re-check ptrace access; PEEK/POKE only need the caller to be the tracer).
bool ReadMemory(pid_t tid, uint64_t addr, void* data, size_t size);
bool WriteMemory(pid_t tid, uint64_t addr, const void* data, size_t size);
/// A NUL-terminated string; nullopt when the memory is unreadable or has no NUL within `max` bytes.
std::optional<std::string> ReadString(pid_t tid, uint64_t addr, size_t max);

/// Lays out strings and pointer arrays for a tracee's scratch area at `base`, then writes them.
class ScratchWriter {
 public:
  explicit ScratchWriter(uint64_t base) : base_(base) {}
  /// Returns the tracee address the string will have.
  uint64_t AddString(const std::string& s);
  /// An array of tracee pointers, 8-aligned; returns its tracee address.
  uint64_t AddPointers(const std::vector<uint64_t>& ptrs);
  /// Writes everything; false when it does not fit kScratchSize or the write fails.
  bool Flush(pid_t tid) const;

 private:
  uint64_t base_;
  std::vector<char> data_;
};

}  // namespace kiln::sandbox::internal

#endif  // __x86_64__
