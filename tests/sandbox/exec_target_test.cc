// What the ptrace tracer reads from a program before it execs it: the ELF machine (from hand-made
// headers of each byte order and class, and from real programs), and the argument vector that runs a
// foreign program through qemu-user.
#include "executor/sandbox/exec_target.h"

#include <elf.h>

#include <gtest/gtest.h>

#include <cstring>

#include "tests/testing/base_images.h"
#include "tests/testing/temp_dir.h"

namespace kiln::sandbox::internal {
namespace {

// The first 20 bytes of an ELF header: magic, class, byte order, version, then e_type and e_machine.
std::string Header(unsigned char cls, unsigned char data, uint16_t machine) {
  std::string h(64, '\0');
  std::memcpy(h.data(), ELFMAG, SELFMAG);
  h[EI_CLASS] = static_cast<char>(cls);
  h[EI_DATA] = static_cast<char>(data);
  h[EI_VERSION] = EV_CURRENT;
  if (data == ELFDATA2LSB) {
    h[16] = ET_EXEC;
    h[18] = static_cast<char>(machine & 0xff);
    h[19] = static_cast<char>(machine >> 8);
  } else {
    h[17] = ET_EXEC;
    h[18] = static_cast<char>(machine >> 8);
    h[19] = static_cast<char>(machine & 0xff);
  }
  return h;
}

std::string Machine(const std::string& head) {
  return ElfMachineName(reinterpret_cast<const unsigned char*>(head.data()), head.size());
}

TEST(ElfMachineTest, NamesEachMachineAsQemuDoes) {
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_X86_64)), "x86_64");
  EXPECT_EQ(Machine(Header(ELFCLASS32, ELFDATA2LSB, EM_386)), "i386");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_AARCH64)), "aarch64");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2MSB, EM_AARCH64)), "aarch64_be");
  EXPECT_EQ(Machine(Header(ELFCLASS32, ELFDATA2LSB, EM_ARM)), "arm");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_PPC64)), "ppc64le");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2MSB, EM_PPC64)), "ppc64");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2MSB, EM_S390)), "s390x");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_RISCV)), "riscv64");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_MIPS)), "mips64el");
  EXPECT_EQ(Machine(Header(ELFCLASS32, ELFDATA2MSB, EM_MIPS)), "mips");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_LOONGARCH)), "loongarch64");
}

TEST(ElfMachineTest, AnythingElseHasNoName) {
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_SPARCV9)), "");  // a machine not listed
  EXPECT_EQ(Machine(Header(ELFCLASSNONE, ELFDATA2LSB, EM_AARCH64)), "");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATANONE, EM_AARCH64)), "");
  EXPECT_EQ(Machine(Header(ELFCLASS64, ELFDATA2LSB, EM_AARCH64).substr(0, 19)), "");  // cut short
  EXPECT_EQ(Machine("#!/bin/sh\necho hello there, world\n"), "");
  EXPECT_EQ(Machine(""), "");
}

TEST(ElfMachineTest, InspectExecutableReadsItFromRealPrograms) {
  // Debian's busybox-static for this machine: a static x86_64 (or this machine's) ELF.
  if (::access("/bin/busybox", R_OK) == 0) {
    auto t = InspectExecutable("/bin/busybox");
    ASSERT_TRUE(t.has_value());
    EXPECT_FALSE(t->script);
    EXPECT_EQ(t->interpreter, "");
#if defined(__x86_64__)
    EXPECT_EQ(t->machine, "x86_64");
#endif
  }
  std::string why, arm64 = testing::Arm64Busybox(&why);
  if (arm64.empty()) GTEST_SKIP() << why;
  auto t = InspectExecutable(arm64);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->machine, "aarch64");
  EXPECT_EQ(t->interpreter, "");  // static

  testing::TempDir dir;
  testing::WriteFile(dir.Sub("script"), "#!/bin/sh -e\necho hi\n", 0755);
  auto s = InspectExecutable(dir.Sub("script"));
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->script);
  EXPECT_EQ(s->interpreter, "/bin/sh");
  EXPECT_EQ(s->script_arg, "-e");
  EXPECT_EQ(s->machine, "");
}

TEST(EmulatedArgvTest, QemuGetsNoPrefixTheGuestsArgvZeroAndTheProgram) {
  const std::string q = "/usr/bin/qemu-aarch64-static";
  std::vector<ArgvSlot> want = {{q}, {"-L"}, {"/"}, {"-0"}, {"", 0}, {"/bin/busybox"}, {"", 1}, {"", 2}};
  EXPECT_EQ(EmulatedArgv(q, "/bin/busybox", 3), want);
  // Only argv[0]: nothing after the program.
  want = {{q}, {"-L"}, {"/"}, {"-0"}, {"", 0}, {"/bin/sh"}};
  EXPECT_EQ(EmulatedArgv(q, "/bin/sh", 1), want);
}

TEST(EmulatedArgvTest, ARelativeProgramCannotBeTakenForAnOption) {
  const std::string q = "/q";
  std::vector<ArgvSlot> want = {{q}, {"-L"}, {"/"}, {"-0"}, {"", 0}, {"./-weird"}, {"", 1}};
  EXPECT_EQ(EmulatedArgv(q, "-weird", 2), want);
  want = {{q}, {"-L"}, {"/"}, {"-0"}, {"", 0}, {"./bin/tool"}};
  EXPECT_EQ(EmulatedArgv(q, "bin/tool", 1), want);
}

TEST(EmulatedArgvTest, AnEmptyArgvGetsTheProgramAsItsName) {
  // execve(path, {NULL}, ...) is allowed; qemu needs some argv[0] to give the guest.
  std::vector<ArgvSlot> want = {{"/q"}, {"-L"}, {"/"}, {"-0"}, {"/bin/true"}, {"/bin/true"}};
  EXPECT_EQ(EmulatedArgv("/q", "/bin/true", 0), want);
}

}  // namespace
}  // namespace kiln::sandbox::internal
