// HashCopySources: the selection half of ExecuteCopy, hashing instead of copying.
//
// The sources are selected by copy_sources.h's SelectSources, the very code the copy uses; the walk
// below a selected directory mirrors copy_step.cc's CopyDirContents (same sorted listing, same ignore
// and --exclude checks on the same paths, same lazy directories for ignore exceptions).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "executor/steps/build_context.h"
#include "executor/cache/cache_key.h"
#include "executor/steps/copy_sources.h"
#include "layers/rootless.h"
#include "layers/safe_path.h"

namespace kiln::executor {
namespace {

using layers::RootDir;
using layers::UniqueFd;

using Item = copy_internal::CopyItem;
using copy_internal::CompileExcludes;
using copy_internal::Display;
using copy_internal::IgnoredByContext;
using copy_internal::IncludedChildren;
using copy_internal::JoinRel;
using copy_internal::SelectSources;
using copy_internal::SourceChild;

char TypeChar(mode_t m) {
  if (S_ISREG(m)) return 'f';
  if (S_ISDIR(m)) return 'd';
  if (S_ISLNK(m)) return 'l';
  if (S_ISCHR(m)) return 'c';
  if (S_ISBLK(m)) return 'b';
  if (S_ISFIFO(m)) return 'p';
  return 's';
}

// Appends one length-framed string (records are concatenations of these).
void Put(std::string* rec, std::string_view s) {
  uint64_t n = s.size();
  for (int i = 7; i >= 0; --i) rec->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  rec->append(s);
}


class SourceHasher {
 public:
  SourceHasher(const CopySource& source, const CopyRequest& req, RootDir src)
      : source_(source), req_(req), src_(std::move(src)) {}

  Result<std::optional<Digest>> Run();

 private:
  bool Ignored(const std::string& src_rel, bool is_dir) const { return IgnoredByContext(source_, src_rel, is_dir); }

  Status HashItem(size_t index, const Item& item);
  Result<bool> HashDirContents(int src_dir, const std::string& src_rel, const std::string& ex_rel,
                               const std::string& out_rel);
  Result<bool> HashEntry(int src_dir, const std::string& name, const struct stat& st, const std::string& src_rel,
                         const std::string& ex_rel, const std::string& out_rel, bool lazy);
  Result<Digest> HashContent(int dir, const std::string& name, const std::string& rel);
  void AddOwner(std::string* rec, int fd, int dirfd, const char* name, const struct stat& st) const;

  const CopySource& source_;
  const CopyRequest& req_;
  RootDir src_;
  std::optional<dockerfile::IgnoreMatcher> exclude_;
  std::vector<std::string> records_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
  std::vector<char> buf_;
};

void SourceHasher::AddOwner(std::string* rec, int fd, int dirfd, const char* name, const struct stat& st) const {
  // Owners matter only where the copy keeps them: --from without --chown (context files become 0:0,
  // --chown is covered by the request fields).
  if (!source_.from_stage || req_.chown) return;
  layers::RootlessOwner o = layers::ImageOwner(fd, dirfd, name, st);
  Put(rec, "owner");
  Put(rec, std::to_string(o.uid) + ":" + std::to_string(o.gid));
}

Result<Digest> SourceHasher::HashContent(int dir, const std::string& name, const std::string& rel) {
  int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening source " + Display(rel), errno);
  UniqueFd in(fd);
  if (buf_.empty()) buf_.resize(1 << 20);
  Sha256 h;
  for (;;) {
    ssize_t n = ::read(in.get(), buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("reading source " + Display(rel), errno);
    }
    if (n == 0) break;
    h.Update(buf_.data(), static_cast<size_t>(n));
  }
  return h.Finish();
}

Result<bool> SourceHasher::HashEntry(int src_dir, const std::string& name, const struct stat& st,
                                     const std::string& src_rel, const std::string& ex_rel, const std::string& out_rel,
                                     bool lazy) {
  if (S_ISSOCK(st.st_mode)) return false;  // the copy skips sockets
  std::string rec;
  Put(&rec, out_rel);
  Put(&rec, std::string(1, TypeChar(st.st_mode)));
  Put(&rec, std::to_string(st.st_mode & 07777));
  if (S_ISDIR(st.st_mode)) {
    int sfd = ::openat(src_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0) return ErrnoStatus("opening source directory " + Display(src_rel), errno);
    UniqueFd sub(sfd);
    AddOwner(&rec, sub.get(), -1, nullptr, st);
    size_t at = records_.size();
    records_.push_back(std::move(rec));
    KILN_ASSIGN_OR_RETURN(bool any, HashDirContents(sub.get(), src_rel, ex_rel, out_rel));
    if (lazy && !any) {
      records_.resize(at);  // an excluded directory with no exception inside is not copied
      return false;
    }
    return true;
  }
  if (S_ISREG(st.st_mode)) {
    if (st.st_nlink > 1) {
      auto [it, inserted] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), out_rel);
      if (!inserted) {
        // The copy recreates the hardlink; the layer then holds a link entry, not the content.
        Put(&rec, "hardlink");
        Put(&rec, it->second);
        records_.push_back(std::move(rec));
        return true;
      }
    }
    Put(&rec, std::to_string(st.st_size));
    KILN_ASSIGN_OR_RETURN(Digest content, HashContent(src_dir, name, src_rel));
    Put(&rec, content.ToString());
    int fd = ::openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    UniqueFd f(fd);
    AddOwner(&rec, f.get(), -1, nullptr, st);
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus("reading symlink " + Display(src_rel), errno);
    target.resize(static_cast<size_t>(n));
    Put(&rec, target);
    AddOwner(&rec, -1, src_dir, name.c_str(), st);
  } else {
    Put(&rec, std::to_string(major(st.st_rdev)) + "," + std::to_string(minor(st.st_rdev)));
    AddOwner(&rec, -1, src_dir, name.c_str(), st);
  }
  records_.push_back(std::move(rec));
  return true;
}

Result<bool> SourceHasher::HashDirContents(int src_dir, const std::string& src_rel, const std::string& ex_rel,
                                           const std::string& out_rel) {
  KILN_ASSIGN_OR_RETURN(auto children,
                        IncludedChildren(source_, exclude_ ? &*exclude_ : nullptr, src_dir, src_rel, ex_rel));
  bool any = false;
  for (const SourceChild& c : children) {
    KILN_ASSIGN_OR_RETURN(bool hashed,
                          HashEntry(src_dir, c.name, c.st, c.src_rel, c.ex_rel, JoinRel(out_rel, c.name), c.lazy));
    any = any || hashed;
  }
  return any;
}

Status SourceHasher::HashItem(size_t index, const Item& item) {
  // Each item is introduced by its name as written and its --parents pivot: they decide where its
  // files land. Entries below are named relative to the item.
  std::string head;
  Put(&head, "item");
  Put(&head, std::to_string(index));
  Put(&head, item.written);
  Put(&head, item.pivot);
  std::string out = "#" + std::to_string(index);
  if (S_ISDIR(item.st.st_mode)) {
    Put(&head, "d");
    records_.push_back(std::move(head));
    KILN_ASSIGN_OR_RETURN(UniqueFd path, src_.OpenDir(item.resolved, false));
    int fd = ::openat(path.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("opening source " + Display(item.written), errno);
    UniqueFd dir(fd);
    return HashDirContents(dir.get(), item.resolved, "", out).status();
  }
  records_.push_back(std::move(head));
  auto [parent_rel, name] = layers::SplitParent(item.resolved);
  KILN_ASSIGN_OR_RETURN(UniqueFd parent, src_.OpenDir(parent_rel, false));
  int fd = ::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening source " + Display(item.written), errno);
  UniqueFd dir(fd);
  return HashEntry(dir.get(), std::string(name), item.st, item.resolved, "", out, false).status();
}

Result<std::optional<Digest>> SourceHasher::Run() {
  KILN_ASSIGN_OR_RETURN(exclude_, CompileExcludes(req_.excludes));
  KILN_ASSIGN_OR_RETURN(std::vector<Item> items, SelectSources(source_, req_, src_, exclude_ ? &*exclude_ : nullptr));
  CacheKeyBuilder b;
  b.Add("kind", "copy-sources");
  b.Add("from-stage", source_.from_stage ? "1" : "0");
  cache_internal::AddCopyRequest(b, req_);
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    if (item.kind == Item::Kind::kInline) continue;  // the request fields cover heredoc files
    if (item.kind == Item::Kind::kUrl) {
      // The bytes behind a URL can change at any time; only a pinned checksum makes them a key.
      if (req_.checksum.empty()) return std::optional<Digest>();
      b.Add("url", item.written);
      continue;
    }
    if (!req_.checksum.empty()) return InvalidArgument("--checksum is only supported for HTTP(S) sources");
    KILN_RETURN_IF_ERROR(HashItem(i, item));
  }
  for (const std::string& r : records_) b.Add("entry", r);
  return std::optional<Digest>(b.Finish());
}

}  // namespace

Result<std::optional<Digest>> HashCopySources(const CopySource& source, const CopyRequest& req) {
  if (source.root.empty()) return InvalidArgument("hashing COPY sources: no source root");
  KILN_ASSIGN_OR_RETURN(RootDir src, RootDir::Open(source.root, layers::ResolveMode::kAuto, false));
  SourceHasher h(source, req, std::move(src));
  return h.Run();
}

}  // namespace kiln::executor
