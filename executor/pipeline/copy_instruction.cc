#include "executor/cache/cache_key.h"
#include "executor/dockerfile/shell_lex.h"
#include "executor/pipeline/stage_build.h"
#include "executor/steps/copy_step.h"
#include "executor/steps/git_url.h"

#include <algorithm>

namespace kiln::executor {

using namespace kiln::dockerfile;
using Clock = std::chrono::steady_clock;

// The cache key standing for what a COPY --from (or a RUN mount from=) reads: a stage's last key, an
// image's digest, or the content of a named context's whole directory.
std::optional<Digest> StageBuild::FromKey(size_t index, const std::string& name) {
  for (const FromRef& fr : ps_.from_refs) {
    if (fr.instruction != index || (!name.empty() && fr.name != name)) continue;
    if (fr.ref.kind == SourceRef::Kind::kStage) {
      auto it = svc_.done->find(fr.ref.stage);
      if (it != svc_.done->end()) return it->second.cache_key;
    }
    if (fr.ref.kind == SourceRef::Kind::kImage) {
      Result<std::shared_ptr<const SourceImage>> img = svc_.fetcher->Resolve(fr.ref.image, ps_.platform);
      if (img.ok()) return StageBaseKey((*img)->manifest_raw.digest, "");
    }
    if (fr.ref.kind == SourceRef::Kind::kContext && svc_.named_dirs) {
      auto dir = svc_.named_dirs->find(fr.ref.image);
      if (dir == svc_.named_dirs->end()) continue;
      CopySource src;
      src.root = dir->second;
      CopyRequest all;
      all.sources = {"."};
      all.dest = "/";
      Result<std::optional<Digest>> d = HashCopySources(src, all);
      if (d.ok() && *d) return Sha256Of("context:" + (*d)->ToString());
    }
  }
  return std::nullopt;
}

// The rootfs a COPY --from reads: a built stage's, or an image's unpacked for this build.
Result<std::string> StageBuild::FromRoot(size_t index, const std::string& from_text, bool match_name) {
  for (const FromRef& fr : ps_.from_refs) {
    if (fr.instruction != index || (match_name && fr.name != from_text)) continue;
    if (fr.ref.kind == SourceRef::Kind::kStage) {
      auto it = svc_.done->find(fr.ref.stage);
      if (it == svc_.done->end() || it->second.rootfs.empty()) {
        return InternalError("stage " + fr.name + " has no files to copy from");
      }
      return it->second.rootfs;
    }
    if (fr.ref.kind == SourceRef::Kind::kImage) {
      std::lock_guard<std::mutex> hold(*svc_.image_roots_mu);  // stages built at once unpack an image once
      auto cached = svc_.image_roots->find(fr.ref.image);
      if (cached != svc_.image_roots->end()) return cached->second;
      KILN_ASSIGN_OR_RETURN(std::shared_ptr<const SourceImage> img, svc_.fetcher->Resolve(fr.ref.image, ps_.platform));
      std::string dir = svc_.work_dir + "/image-" + std::to_string(svc_.image_roots->size());
      KILN_RETURN_IF_ERROR(MakeDir(dir));
      auto t = Clock::now();
      KILN_RETURN_IF_ERROR(svc_.fetcher->Unpack(*img, dir, ExtractOpts()).status());
      svc_.times->base += Clock::now() - t;
      (*svc_.image_roots)[fr.ref.image] = dir;
      return dir;
    }
    if (fr.ref.kind == SourceRef::Kind::kContext) {
      auto dir = svc_.named_dirs ? svc_.named_dirs->find(fr.ref.image) : std::map<std::string, std::string>::const_iterator();
      if (!svc_.named_dirs || dir == svc_.named_dirs->end()) {
        return InternalError("--from=" + from_text + ": the build context " + fr.ref.image + " was not prepared");
      }
      return dir->second;
    }
    return InvalidArgument("--from=" + from_text + " names scratch, which has no files");
  }
  return InternalError("--from=" + from_text + " was not resolved by the plan");
}

// What a COPY/ADD reads, for its key: from a stage or image, that one's key (which stands for its
// whole tree, so its files need not be read); from the context, the content of the files.
Result<std::optional<Digest>> StageBuild::CopySourcesKey(size_t index, const CopySource& src, const CopyRequest& req) {
  if (std::optional<Digest> from_key = FromKey(index)) return std::optional<Digest>(CopyFromKeySources(*from_key, req));
  return HashCopySources(src, req);
}

Status StageBuild::CopyOrAdd(size_t index, const Instruction& inst, const CopyCommon& c, bool add, const std::string& from,
                 bool parents, const std::string& checksum) {
  CopySource src;
  if (from.empty()) {
    if (!svc_.context) return FailedPrecondition("no build context");
    src.root = svc_.context->root();
    src.ignore = &svc_.context->ignore();
  } else {
    KILN_ASSIGN_OR_RETURN(src.root, FromRoot(index, from));
    // A named context's files are owned by 0:0, as the main context's; a stage's or image's keep theirs.
    src.from_stage = std::none_of(ps_.from_refs.begin(), ps_.from_refs.end(), [&](const FromRef& fr) {
      return fr.instruction == index && fr.ref.kind == SourceRef::Kind::kContext;
    });
  }
  CopyRequest req;
  req.add = add;
  req.parents = parents;
  for (const std::string& s : c.sources) {
    KILN_ASSIGN_OR_RETURN(std::string e, Expand(s));
    req.sources.push_back(e);
  }
  for (const InlineSource& is : c.inline_sources) {
    InlineSource e = is;
    if (is.expand) {
      LexOptions lo;
      lo.escape = svc_.plan->escape;
      lo.raw_quotes = true;
      lo.raw_escapes = true;
      KILN_ASSIGN_OR_RETURN(e.data, ExpandWord(is.data, Vars_(), lo));
    }
    req.inline_sources.push_back(e);
  }
  KILN_ASSIGN_OR_RETURN(req.dest, Expand(c.dest));
  req.workdir = ResolveWorkdir("/", image_.config.config.working_dir);
  std::string chown, chmod;
  if (!c.chown.empty()) {
    KILN_ASSIGN_OR_RETURN(chown, Expand(c.chown));
  }
  if (!c.chmod.empty()) {
    KILN_ASSIGN_OR_RETURN(chmod, Expand(c.chmod));
    KILN_ASSIGN_OR_RETURN(req.chmod, ParseChmod(chmod));
  }
  for (const std::string& ex : c.excludes) {
    KILN_ASSIGN_OR_RETURN(std::string e, Expand(ex));
    req.excludes.push_back(e);
  }
  if (!checksum.empty()) {
    KILN_ASSIGN_OR_RETURN(req.checksum, Expand(checksum));
  }
  if (const auto* a = std::get_if<AddInst>(&inst.cmd)) req.unpack = a->unpack;
  if (add && std::any_of(req.sources.begin(), req.sources.end(), [](const std::string& s) { return IsGitUrl(s); })) {
    return AddGit(index, inst, std::move(req), chown, chmod);
  }
  if (c.link) return CopyLinked(index, inst, src, std::move(req), chown, chmod, from);
  if (CacheOn(true)) {
    // The key covers the request as expanded and the content of every file it would read. With
    // COPY layers not cached (--cache-copy-layers=false) the key still moves the chain, so later
    // RUN steps stay cacheable.
    // From the context: the content of what it reads. From a stage: that stage's key, which
    // stands for its whole tree, so its files need not be read (nor even exist yet).
    Result<std::optional<Digest>> sources = CopySourcesKey(index, src, req);
    if (!sources.ok()) return sources.status().WithContext(inst.keyword + " failed");
    if (!*sources) {
      cache_.MarkUnkeyable();  // e.g. ADD of a URL without --checksum: nothing after it can be keyed
      svc_.log->Info("layer cache: " + inst.keyword + " of a URL without --checksum is not cached, nor what follows");
    } else {
      std::string what = inst.keyword + (add ? " add" : "") + "\nfrom=" + from;
      for (const std::string& x : req.sources) what += "\nsrc=" + x;
      for (const InlineSource& x : req.inline_sources) what += "\ninline=" + x.path;
      what += "\ndest=" + req.dest + "\nworkdir=" + req.workdir + "\nchown=" + chown + "\nchmod=" + chmod +
              "\nparents=" + (parents ? "1" : "0") + "\nchecksum=" + req.checksum;
      if (req.unpack) what += std::string("\nunpack=") + (*req.unpack ? "1" : "0");
      for (const std::string& x : req.excludes) what += "\nexclude=" + x;
      KILN_ASSIGN_OR_RETURN(bool hit, TryCopyCache(index, what, **sources));
      if (hit) return OkStatus();
    }
  }
  KILN_RETURN_IF_ERROR(EnsureRootfs());
  if (!chown.empty()) {
    KILN_ASSIGN_OR_RETURN(auto ids, ResolveChown(rootfs_, chown));
    req.chown = ids;
  }
  auto t = Clock::now();
  Result<CopyResult> r = ExecuteCopy(src, rootfs_, req, svc_.url_fetcher);
  svc_.times->copy += Clock::now() - t;
  if (!r.ok()) return r.status().WithContext(inst.keyword + " failed");
  KILN_RETURN_IF_ERROR(AddPathsLayer(r->changed, inst.original));
  note_ = std::to_string(r->files) + " files, " + FormatBytes(r->bytes) + (note_.empty() ? "" : "; " + note_);
  return StoreInCache();
}

// FROM NAME of a --build-context directory: the stage starts as scratch with the directory's files
// as its first layer (owned by 0:0). The layer is always written; its content hash moves the cache
// key on, so the steps after it are cached as usual.
Status StageBuild::FromContextDir() {
  const std::string& name = ps_.base.image;
  auto it = svc_.named_dirs ? svc_.named_dirs->find(name) : std::map<std::string, std::string>::const_iterator();
  if (!svc_.named_dirs || it == svc_.named_dirs->end()) {
    return InternalError("FROM " + name + ": the build context was not prepared");
  }
  CopySource src;
  src.root = it->second;
  CopyRequest req;
  req.sources = {"."};
  req.dest = "/";
  if (CacheOn(true)) {
    Result<std::optional<Digest>> sources = HashCopySources(src, req);
    if (!sources.ok()) return sources.status().WithContext("FROM " + name);
    if (*sources) cache_.ChainAfterStep("FROM context " + name, **sources);
  }
  KILN_RETURN_IF_ERROR(EnsureRootfs());
  Result<CopyResult> r = ExecuteCopy(src, rootfs_, req, nullptr);
  if (!r.ok()) return r.status().WithContext("FROM " + name);
  return AddPathsLayer(r->changed, "FROM " + name + " (build context)");
}

}  // namespace kiln::executor
