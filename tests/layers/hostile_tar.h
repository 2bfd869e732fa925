// Test helpers for the extraction tests (header-only: only *_test.cc files are compiled here).
// Builds tar streams in memory with libarchive's pax writer (which writes names exactly as given, so
// hostile names reach the extractor unmodified), compresses them, and snapshots directory trees.
#pragma once

// Designated initializers of EntrySpec name only the fields a case needs.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/digest.h"
#include "core/io.h"
#include "layers/extract.h"

namespace kiln::layers::testing {

struct EntrySpec {
  std::string name;
  mode_t type = S_IFREG;
  mode_t perm = 0644;
  std::string content;  // regular files
  std::string link;     // symlink target or hardlink target
  bool hardlink = false;
  uint32_t uid = 0, gid = 0;
  time_t mtime = 1700000000;
  long mtime_nsec = 0;
  dev_t rdev = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class TarBuilder {
 public:
  TarBuilder() {
    a_ = archive_write_new();
    archive_write_set_format_pax(a_);
    archive_write_set_bytes_per_block(a_, 0);  // no padding to 10 KiB blocks, like Go's archive/tar
    archive_write_open(a_, &out_, nullptr, &TarBuilder::WriteCb, nullptr);
  }
  ~TarBuilder() {
    if (a_) archive_write_free(a_);
  }

  TarBuilder& Add(const EntrySpec& s) {
    archive_entry* e = archive_entry_new();
    // Byte names (the *_utf8 setters crash libarchive 3.6's pax writer under the C locale; non-ASCII
    // pax records are built by PaxFile below instead).
    archive_entry_set_pathname(e, s.name.c_str());
    archive_entry_set_perm(e, s.perm);
    archive_entry_set_uid(e, s.uid);
    archive_entry_set_gid(e, s.gid);
    archive_entry_set_mtime(e, s.mtime, s.mtime_nsec);
    if (s.hardlink) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, s.link.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, s.type);
      if (s.type == S_IFLNK) archive_entry_set_symlink(e, s.link.c_str());
      if (s.type == S_IFCHR || s.type == S_IFBLK) archive_entry_set_rdev(e, s.rdev);
      archive_entry_set_size(e, s.type == S_IFREG ? static_cast<la_int64_t>(s.content.size()) : 0);
    }
    for (const auto& [k, v] : s.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    EXPECT_EQ(archive_write_header(a_, e), ARCHIVE_OK) << archive_error_string(a_) << " for " << s.name;
    if (!s.hardlink && s.type == S_IFREG && !s.content.empty()) {
      EXPECT_EQ(archive_write_data(a_, s.content.data(), s.content.size()), static_cast<la_ssize_t>(s.content.size()));
    }
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& File(const std::string& name, const std::string& content, mode_t perm = 0644) {
    return Add({.name = name, .perm = perm, .content = content});
  }
  TarBuilder& Dir(const std::string& name, mode_t perm = 0755) {
    return Add({.name = name, .type = S_IFDIR, .perm = perm});
  }
  TarBuilder& Symlink(const std::string& name, const std::string& target) {
    return Add({.name = name, .type = S_IFLNK, .perm = 0777, .link = target});
  }
  TarBuilder& Hardlink(const std::string& name, const std::string& target) {
    return Add({.name = name, .link = target, .hardlink = true});
  }

  std::string Finish() {
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
    return out_;
  }

 private:
  static la_ssize_t WriteCb(archive*, void* ctx, const void* buf, size_t n) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  archive* a_;
  std::string out_;
};

inline std::string Gzip(std::string_view data, int level = 6) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline std::string Zstd(std::string_view data, int level = 3) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

/// A 512-byte ustar header, for streams libarchive's writer would not produce (a size it cannot back).
inline std::string UstarHeader(const std::string& name, uint64_t size, char type = '0', mode_t mode = 0644) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(h.data() + 100, 8, "%07o", static_cast<unsigned>(mode));
  std::snprintf(h.data() + 108, 8, "%07o", 0u);
  std::snprintf(h.data() + 116, 8, "%07o", 0u);
  std::snprintf(h.data() + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  std::snprintf(h.data() + 136, 12, "%011o", 1700000000u);
  h[156] = type;
  std::memcpy(h.data() + 257, "ustar\0" "00", 8);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  h[155] = ' ';
  return h;
}

/// Content padded to whole 512-byte blocks.
inline std::string Padded(const std::string& content) {
  return content + std::string((512 - content.size() % 512) % 512, '\0');
}

/// A regular file whose name is given by a pax `path` record (UTF-8, as Go's archive/tar writes
/// names that do not fit ustar), followed by its content. Append "\0" * 1024 to end the archive.
inline std::string PaxFile(const std::string& path, const std::string& content) {
  std::string body = " path=" + path + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  std::string record = std::to_string(len) + body;
  return UstarHeader("PaxHeaders/x", record.size(), 'x') + Padded(record) +
         UstarHeader("placeholder", content.size()) + Padded(content);
}

/// Extracts `blob` (any compression) into `rootfs`, verifying against its real digest.
inline Result<ExtractResult> ExtractBlob(const std::string& blob, const std::string& rootfs,
                                         const ExtractOptions& options = {}) {
  StringReader r(blob);
  return ExtractLayer(r, LayerExpectation{Sha256Of(blob), blob.size(), std::nullopt}, rootfs, options);
}

/// Everything observable about a tree (type, mode, owner, size, mtime, content, link target, xattrs,
/// link count), keyed by relative path; compare two snapshots to prove nothing changed.
inline void SnapshotInto(const std::string& dir, const std::string& rel, std::map<std::string, std::string>* out) {
  std::string path = rel.empty() ? dir : dir + "/" + rel;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    (*out)[rel] = "missing";
    return;
  }
  std::string d = "mode=" + std::to_string(st.st_mode) + " uid=" + std::to_string(st.st_uid) +
                  " gid=" + std::to_string(st.st_gid) + " nlink=" + std::to_string(st.st_nlink) +
                  " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                  " ino=" + std::to_string(st.st_ino);
  if (S_ISREG(st.st_mode)) {
    FILE* f = std::fopen(path.c_str(), "rb");
    std::string c;
    if (f) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) c.append(buf, n);
      std::fclose(f);
    }
    d += " sha=" + Sha256Of(c).hex();
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    d += " link=" + std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
  }
  char names[4096];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
  if (n > 0) d += " xattrs=" + std::string(names, static_cast<size_t>(n));
  (*out)[rel] = d;
  if (S_ISDIR(st.st_mode)) {
    DIR* dp = ::opendir(path.c_str());
    if (!dp) return;
    std::vector<std::string> kids;
    while (dirent* e = ::readdir(dp)) {
      std::string k = e->d_name;
      if (k != "." && k != "..") kids.push_back(k);
    }
    ::closedir(dp);
    for (const auto& k : kids) SnapshotInto(dir, rel.empty() ? k : rel + "/" + k, out);
  }
}

inline std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  SnapshotInto(dir, "", &out);
  return out;
}

}  // namespace kiln::layers::testing
