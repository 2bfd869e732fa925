#include "layers/tar_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "layers/rootless.h"
#include "tests/testing/temp_dir.h"

namespace kiln::layers {
namespace {

using kiln::testing::RunShell;
using kiln::testing::TempDir;
using kiln::testing::WriteFile;

struct Entry {
  std::string name;
  mode_t mode = 0;  // with type bits
  int64_t uid = -1, gid = -1;
  std::string uname, gname;
  int64_t mtime = 0;
  long mtime_nsec = 0;
  int64_t size = 0;
  std::string symlink, hardlink, content;
  std::map<std::string, std::string> xattrs;
  dev_t rdev = 0;
};

std::vector<Entry> ReadTar(const std::string& tar) {
  std::vector<Entry> out;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Entry x;
    x.name = archive_entry_pathname(e);
    x.mode = archive_entry_mode(e);
    x.uid = archive_entry_uid(e);
    x.gid = archive_entry_gid(e);
    x.uname = archive_entry_uname(e) ? archive_entry_uname(e) : "";
    x.gname = archive_entry_gname(e) ? archive_entry_gname(e) : "";
    x.mtime = archive_entry_mtime(e);
    x.mtime_nsec = archive_entry_mtime_nsec(e);
    x.size = archive_entry_size(e);
    if (archive_entry_symlink(e)) x.symlink = archive_entry_symlink(e);
    if (archive_entry_hardlink(e)) x.hardlink = archive_entry_hardlink(e);
    x.rdev = archive_entry_rdev(e);
    const char* name;
    const void* value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      x.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) x.content.append(buf, static_cast<size_t>(n));
    out.push_back(std::move(x));
  }
  archive_read_free(a);
  return out;
}

std::vector<std::string> Names(const std::vector<Entry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  return names;
}

const Entry* Find(const std::vector<Entry>& entries, const std::string& name) {
  for (const auto& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

Result<std::string> Tar(const std::string& root, const LayerChanges& changes, TarOptions opts = {}) {
  StringWriter out;
  KILN_ASSIGN_OR_RETURN(TarStats stats, WriteLayerTar(root, changes, opts, &out));
  (void)stats;
  return out.Take();
}

void SetMtime(const std::string& path, time_t sec, long nsec = 0) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

TEST(TarWriterTest, SortedWalkOrderWithParentsOnceAndDirSlashes) {
  TempDir d;
  WriteFile(d.Sub("b/c/file"), "x");
  WriteFile(d.Sub("a/x"), "y");
  WriteFile(d.Sub("a-b"), "z");
  WriteFile(d.Sub("etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  LayerChanges ch;
  ch.paths = {"/etc/passwd", "b/c/file", "./a-b", "a/x", "a", "a/x", "etc//passwd"};
  auto tar = Tar(d.path(), ch);
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  auto entries = ReadTar(*tar);
  EXPECT_EQ(Names(entries), (std::vector<std::string>{"a/", "a/x", "a-b", "b/", "b/c/", "b/c/file", "etc/",
                                                       "etc/passwd"}));
  EXPECT_EQ(Find(entries, "etc/passwd")->content, "root:x:0:0::/root:/bin/sh\n");
  EXPECT_TRUE(S_ISDIR(Find(entries, "b/c/")->mode));
}

// on_file_bytes sees every byte of file content once (a progress line's count), nothing else.
TEST(TarWriterTest, FileBytesAreReportedAsTheyAreWritten) {
  TempDir d;
  WriteFile(d.Sub("big"), std::string(3 << 20, 'b'));
  WriteFile(d.Sub("small"), "12345");
  WriteFile(d.Sub("dir/empty"), "");
  uint64_t seen = 0, calls = 0;
  TarOptions opts;
  opts.on_file_bytes = [&](uint64_t n) {
    seen += n;
    ++calls;
  };
  auto tar = Tar(d.path(), {{"big", "small", "dir/empty"}, {}, {}}, opts);
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  EXPECT_EQ(seen, (3u << 20) + 5);
  EXPECT_GT(calls, 2u) << "a big file is reported in chunks, not once at its end";
}

TEST(TarWriterTest, EndsWithTwoZeroBlocksAndNoRecordPadding) {
  TempDir d;
  WriteFile(d.Sub("f"), std::string(1000, 'q'));
  auto tar = Tar(d.path(), {{"f"}, {}, {}});
  ASSERT_TRUE(tar.ok());
  // header + 2 data blocks + 2 end blocks, as Go's archive/tar writes (no 10 KiB record padding).
  ASSERT_EQ(tar->size(), 512u * 5);
  EXPECT_EQ(tar->substr(512 * 3), std::string(1024, '\0'));
  EXPECT_EQ(tar->substr(257, 6), std::string("ustar\0", 6));  // plain ustar header, no pax needed
}

TEST(TarWriterTest, OwnershipModesAndNumericIds) {
  TempDir d;
  WriteFile(d.Sub("bin/su"), "ELF", 0755);
  ASSERT_EQ(::chown(d.Sub("bin/su").c_str(), 0, 42), 0);  // before chmod: chown clears setuid
  ASSERT_EQ(::chmod(d.Sub("bin/su").c_str(), 04755), 0);
  ASSERT_EQ(::mkdir(d.Sub("tmp").c_str(), 0700), 0);
  ASSERT_EQ(::chmod(d.Sub("tmp").c_str(), 01777), 0);
  ASSERT_EQ(::mkdir(d.Sub("shared").c_str(), 0700), 0);
  ASSERT_EQ(::chmod(d.Sub("shared").c_str(), 02775), 0);
  ASSERT_EQ(::chown(d.Sub("shared").c_str(), 1234, 5678), 0);
  auto tar = Tar(d.path(), {{"bin/su", "tmp", "shared"}, {}, {}});
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  auto entries = ReadTar(*tar);
  const Entry* su = Find(entries, "bin/su");
  ASSERT_NE(su, nullptr);
  EXPECT_EQ(su->mode, S_IFREG | 04755);
  EXPECT_EQ(su->uid, 0);
  EXPECT_EQ(su->gid, 42);
  EXPECT_EQ(su->uname, "");
  EXPECT_EQ(su->gname, "");
  EXPECT_EQ(Find(entries, "tmp/")->mode, S_IFDIR | 01777);
  EXPECT_EQ(Find(entries, "shared/")->mode, S_IFDIR | 02775);
  EXPECT_EQ(Find(entries, "shared/")->uid, 1234);
  EXPECT_EQ(Find(entries, "shared/")->gid, 5678);
}

TEST(TarWriterTest, HardlinksBecomeLinksToTheFirstName) {
  TempDir d;
  WriteFile(d.Sub("usr/bin/a"), "same inode");
  ASSERT_EQ(::mkdir(d.Sub("x").c_str(), 0755), 0);
  ASSERT_EQ(::link(d.Sub("usr/bin/a").c_str(), d.Sub("x/b").c_str()), 0);
  ASSERT_EQ(::link(d.Sub("usr/bin/a").c_str(), d.Sub("usr/bin/c").c_str()), 0);
  StringWriter out;
  auto stats = WriteLayerTar(d.path(), {{"x/b", "usr/bin/c", "usr/bin/a"}, {}, {}}, {}, &out);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->hardlinks, 2u);
  auto entries = ReadTar(out.data());
  EXPECT_EQ(Names(entries), (std::vector<std::string>{"usr/", "usr/bin/", "usr/bin/a", "usr/bin/c", "x/", "x/b"}));
  EXPECT_EQ(Find(entries, "usr/bin/a")->content, "same inode");
  EXPECT_EQ(Find(entries, "usr/bin/a")->hardlink, "");
  EXPECT_EQ(Find(entries, "usr/bin/c")->hardlink, "usr/bin/a");
  EXPECT_EQ(Find(entries, "x/b")->hardlink, "usr/bin/a");
  EXPECT_EQ(Find(entries, "x/b")->size, 0);
}

TEST(TarWriterTest, SymlinksAreWrittenNotFollowed) {
  TempDir d;
  ASSERT_EQ(::mkdir(d.Sub("etc").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("/etc/hostname", d.Sub("etc/host").c_str()), 0);
  ASSERT_EQ(::symlink("../etc", d.Sub("rel").c_str()), 0);
  auto tar = Tar(d.path(), {{"etc/host", "rel"}, {}, {}});
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  auto entries = ReadTar(*tar);
  EXPECT_EQ(Names(entries), (std::vector<std::string>{"etc/", "etc/host", "rel"}));
  EXPECT_TRUE(S_ISLNK(Find(entries, "etc/host")->mode));
  EXPECT_EQ(Find(entries, "etc/host")->symlink, "/etc/hostname");
  EXPECT_EQ(Find(entries, "etc/host")->content, "");
  EXPECT_EQ(Find(entries, "rel")->symlink, "../etc");
}

TEST(TarWriterTest, RefusesToTraverseASymlinkedParent) {
  TempDir host, d;
  WriteFile(host.Sub("secret"), "host data");
  ASSERT_EQ(::symlink(host.path().c_str(), d.Sub("escape").c_str()), 0);
  auto tar = Tar(d.path(), {{"escape/secret"}, {}, {}});
  ASSERT_FALSE(tar.ok());
  EXPECT_EQ(tar.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(tar.status().message().find("escape"), std::string::npos);
}

TEST(TarWriterTest, RejectsDotDot) {
  TempDir d;
  auto tar = Tar(d.path(), {{"a/../../etc/passwd"}, {}, {}});
  EXPECT_EQ(tar.status().code(), ErrorCode::kInvalidArgument);
}

TEST(TarWriterTest, MissingPathIsNotFound) {
  TempDir d;
  EXPECT_EQ(Tar(d.path(), {{"nope"}, {}, {}}).status().code(), ErrorCode::kNotFound);
}

TEST(TarWriterTest, XattrsAndRootlessOwner) {
  TempDir d;
  WriteFile(d.Sub("f"), "data");
  // vfs_cap_data revision 2, effective, permitted = CAP_NET_BIND_SERVICE (bit 10).
  std::string cap(20, '\0');
  cap[0] = 0x01;
  cap[3] = 0x02;
  cap[5] = 0x04;
  if (::setxattr(d.Sub("f").c_str(), "user.kiln.test", "v1", 2, 0) != 0) GTEST_SKIP() << "no user xattrs here";
  ASSERT_EQ(::setxattr(d.Sub("f").c_str(), "security.capability", cap.data(), cap.size(), 0), 0);
  std::string owner = EncodeRootlessOwner({1000, 2000});
  ASSERT_EQ(::setxattr(d.Sub("f").c_str(), kRootlessXattr, owner.data(), owner.size(), 0), 0);
  ASSERT_EQ(::mkdir(d.Sub("dir").c_str(), 0755), 0);
  std::string dir_owner = EncodeRootlessOwner({33, 0});
  ASSERT_EQ(::setxattr(d.Sub("dir").c_str(), kRootlessXattr, dir_owner.data(), dir_owner.size(), 0), 0);

  auto tar = Tar(d.path(), {{"f", "dir"}, {}, {}});
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  auto entries = ReadTar(*tar);
  const Entry* f = Find(entries, "f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->uid, 1000);
  EXPECT_EQ(f->gid, 2000);
  EXPECT_EQ(f->xattrs, (std::map<std::string, std::string>{{"security.capability", cap}, {"user.kiln.test", "v1"}}));
  EXPECT_EQ(Find(entries, "dir/")->uid, 33);
  EXPECT_EQ(Find(entries, "dir/")->gid, 0);
  EXPECT_TRUE(Find(entries, "dir/")->xattrs.empty());
  EXPECT_EQ(tar->find("rootlesscontainers"), std::string::npos);
  EXPECT_NE(tar->find("SCHILY.xattr.user.kiln.test=v1"), std::string::npos);
}

TEST(TarWriterTest, MalformedRootlessXattrFails) {
  TempDir d;
  WriteFile(d.Sub("f"), "data");
  if (::setxattr(d.Sub("f").c_str(), kRootlessXattr, "\x0a\x01", 2, 0) != 0) GTEST_SKIP() << "no user xattrs here";
  EXPECT_EQ(Tar(d.path(), {{"f"}, {}, {}}).status().code(), ErrorCode::kInvalidArgument);
}

TEST(TarWriterTest, MtimesTruncatedToSecondsAndClamped) {
  TempDir d;
  WriteFile(d.Sub("new"), "n");
  WriteFile(d.Sub("old"), "o");
  ASSERT_EQ(::mkdir(d.Sub("dir").c_str(), 0755), 0);
  SetMtime(d.Sub("new"), 2000000000, 999999999);
  SetMtime(d.Sub("old"), 500, 5);
  SetMtime(d.Sub("dir"), 1700000000, 1);
  LayerChanges ch{{"new", "old", "dir"}, {"gone"}, {}};
  auto plain = Tar(d.path(), ch);
  ASSERT_TRUE(plain.ok());
  auto e = ReadTar(*plain);
  EXPECT_EQ(Find(e, "new")->mtime, 2000000000);
  EXPECT_EQ(Find(e, "new")->mtime_nsec, 0);
  EXPECT_EQ(Find(e, "old")->mtime, 500);
  EXPECT_EQ(Find(e, "dir/")->mtime, 1700000000);
  EXPECT_EQ(Find(e, ".wh.gone")->mtime, 0);

  TarOptions opts;
  opts.source_date_epoch = 1000;
  auto clamped = Tar(d.path(), ch, opts);
  ASSERT_TRUE(clamped.ok());
  e = ReadTar(*clamped);
  EXPECT_EQ(Find(e, "new")->mtime, 1000);
  EXPECT_EQ(Find(e, "old")->mtime, 500);
  EXPECT_EQ(Find(e, "dir/")->mtime, 1000);
  EXPECT_EQ(Find(e, ".wh.gone")->mtime, 1000);
}

TEST(TarWriterTest, WhiteoutsAndOpaqueMarkers) {
  TempDir d;
  WriteFile(d.Sub("etc/hosts"), "h");
  ASSERT_EQ(::mkdir(d.Sub("var").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(d.Sub("opq").c_str(), 0711), 0);
  WriteFile(d.Sub("opq/!bang"), "sorts before '.'");
  WriteFile(d.Sub("opq/z"), "z");
  LayerChanges ch;
  ch.paths = {"etc/hosts", "opq/!bang", "opq/z"};
  // "var/cache/x" is covered by the deletion of "var/cache"; "etc/hosts" is re-added, not whited out.
  ch.deletions = {"etc/shadow", "var/cache", "var/cache/x", "etc/hosts", "toplevel"};
  ch.opaque_dirs = {"opq", ""};
  auto tar = Tar(d.path(), ch);
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  auto entries = ReadTar(*tar);
  EXPECT_EQ(Names(entries),
            (std::vector<std::string>{".wh..wh..opq", ".wh.toplevel", "etc/", "etc/.wh.shadow", "etc/hosts", "opq/",
                                      "opq/.wh..wh..opq", "opq/!bang", "opq/z", "var/", "var/.wh.cache"}));
  for (const char* name : {".wh..wh..opq", "etc/.wh.shadow", "opq/.wh..wh..opq", "var/.wh.cache"}) {
    const Entry* w = Find(entries, name);
    ASSERT_NE(w, nullptr) << name;
    EXPECT_EQ(w->mode, S_IFREG) << name;  // mode 0, as containerd writes
    EXPECT_EQ(w->uid, 0);
    EXPECT_EQ(w->gid, 0);
    EXPECT_EQ(w->size, 0);
  }
  EXPECT_EQ(Find(entries, "opq/")->mode, S_IFDIR | 0711);
}

TEST(TarWriterTest, DevicesAndFifosAreKeptSocketsSkipped) {
  TempDir d;
  ASSERT_EQ(::mkfifo(d.Sub("fifo").c_str(), 0640), 0);
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string sock_path = d.Sub("sock");
  ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(sock);
  bool have_dev = ::mknod(d.Sub("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0 &&
                  ::chmod(d.Sub("null").c_str(), 0666) == 0;  // mknod honours the umask
  LayerChanges ch{{"fifo", "sock"}, {}, {}};
  if (have_dev) ch.paths.push_back("null");
  auto tar = Tar(d.path(), ch);
  ASSERT_TRUE(tar.ok()) << tar.status().ToString();
  auto entries = ReadTar(*tar);
  EXPECT_EQ(Find(entries, "sock"), nullptr);
  ASSERT_NE(Find(entries, "fifo"), nullptr);
  EXPECT_EQ(Find(entries, "fifo")->mode, S_IFIFO | 0640);
  if (have_dev) {
    const Entry* n = Find(entries, "null");
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->mode, S_IFCHR | 0666);
    EXPECT_EQ(major(n->rdev), 1u);
    EXPECT_EQ(minor(n->rdev), 3u);
  }
}

TEST(TarWriterTest, LargeFilesAndLongNamesStream) {
  TempDir d;
  std::string big;
  for (int i = 0; big.size() < (3u << 20) + 17; ++i) big += std::to_string(i * 7919) + ",";
  std::string long_name = std::string(120, 'n') + "/" + std::string(150, 'm');
  WriteFile(d.Sub(long_name), big);
  auto tar = Tar(d.path(), {{long_name}, {}, {}});
  ASSERT_TRUE(tar.ok());
  auto entries = ReadTar(*tar);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, std::string(120, 'n') + "/");
  EXPECT_EQ(entries[1].name, long_name);
  EXPECT_EQ(entries[1].content, big);
}

TEST(TarWriterTest, DeterministicAcrossRuns) {
  TempDir d;
  for (int i = 0; i < 50; ++i) WriteFile(d.Sub("d" + std::to_string(i % 7) + "/f" + std::to_string(i)), std::string(i * 100, 'a' + i % 26));
  LayerChanges ch;
  for (int i = 49; i >= 0; --i) ch.paths.push_back("d" + std::to_string(i % 7) + "/f" + std::to_string(i));
  ch.deletions = {"d1/old"};
  auto a = Tar(d.path(), ch);
  std::reverse(ch.paths.begin(), ch.paths.end());
  auto b = Tar(d.path(), ch);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(TarWriterTest, ReadableByGnuTarAndPython) {
  TempDir d, out;
  WriteFile(d.Sub("etc/motd"), "hello\n");
  ASSERT_EQ(::symlink("motd", d.Sub("etc/link").c_str()), 0);
  auto tar = Tar(d.path(), {{"etc/motd", "etc/link"}, {"etc/gone"}, {}});
  ASSERT_TRUE(tar.ok());
  WriteFile(out.Sub("layer.tar"), *tar);
  std::string listing;
  ASSERT_EQ(RunShell("tar -tvf " + out.Sub("layer.tar"), &listing), 0) << listing;
  EXPECT_NE(listing.find("etc/link -> motd"), std::string::npos) << listing;
  std::string py;
  ASSERT_EQ(RunShell("python3 -c 'import tarfile,sys; print(\",\".join(m.name for m in tarfile.open(sys.argv[1])))' " +
                         out.Sub("layer.tar"),
                     &py),
            0)
      << py;
  EXPECT_EQ(py, "etc,etc/.wh.gone,etc/link,etc/motd\n");
}

}  // namespace
}  // namespace kiln::layers
