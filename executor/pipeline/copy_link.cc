// COPY --link (and ADD --link): the layer is made apart from the image below it — the files are
// copied into an empty directory, not into the rootfs — so it holds exactly the copied files and the
// directories leading to them, whatever the image has at those paths, and its cache key does not
// chain through the steps before it: a cached --link layer is reused after any earlier change and
// is not built (or uploaded) again. The layer is applied to the rootfs only when a later step needs
// files, as any other layer.
#include <filesystem>

#include "executor/cache/cache_key.h"
#include "executor/pipeline/stage_build.h"

namespace kiln::executor {

using namespace kiln::dockerfile;
using Clock = std::chrono::steady_clock;

namespace {

// "1000", "1000:1000": ids that need no /etc/passwd.
std::optional<std::pair<uint32_t, uint32_t>> NumericChown(const std::string& spec) {
  size_t colon = spec.find(':');
  std::string u = spec.substr(0, colon), g = colon == std::string::npos ? u : spec.substr(colon + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(u) || !digits(g)) return std::nullopt;
  return std::make_pair(static_cast<uint32_t>(std::stoul(u)), static_cast<uint32_t>(std::stoul(g)));
}

}  // namespace

Status StageBuild::CopyLinked(size_t index, const Instruction& inst, const CopySource& src, CopyRequest req,
                              const std::string& chown, const std::string& chmod, const std::string& from) {
  // Owners by name come from the image's /etc/passwd: then the ids, not the names, are what the
  // layer depends on, and they go into the key.
  if (!chown.empty()) {
    if (auto ids = NumericChown(chown)) {
      req.chown = *ids;
    } else {
      KILN_RETURN_IF_ERROR(EnsureRootfs());
      KILN_ASSIGN_OR_RETURN(auto resolved, ResolveChown(rootfs_, chown));
      req.chown = resolved;
    }
  }
  if (CacheOn(true)) {
    Result<std::optional<Digest>> sources = CopySourcesKey(index, src, req);
    if (!sources.ok()) return sources.status().WithContext(inst.keyword + " failed");
    if (!*sources) {
      cache_.MarkUnkeyable();
    } else {
      std::string what = inst.keyword + " --link\nfrom=" + from;
      for (const std::string& x : req.sources) what += "\nsrc=" + x;
      for (const InlineSource& x : req.inline_sources) what += "\ninline=" + x.path;
      what += "\ndest=" + req.dest + "\nworkdir=" + req.workdir + "\nchmod=" + chmod + "\nparents=" +
              (req.parents ? "1" : "0") + "\nchecksum=" + req.checksum;
      if (req.unpack) what += std::string("\nunpack=") + (*req.unpack ? "1" : "0");
      if (req.chown) what += "\nids=" + std::to_string(req.chown->first) + ":" + std::to_string(req.chown->second);
      for (const std::string& x : req.excludes) what += "\nexclude=" + x;
      KILN_ASSIGN_OR_RETURN(bool hit, TryCopyCache(index, what, **sources, /*independent=*/true));
      if (hit) {
        note_ += "; --link: independent of the layers below";
        return OkStatus();
      }
    }
  }
  // Into an empty directory of its own: nothing of the image below takes part.
  std::string tree = svc_.work_dir + "/link-" + std::to_string(ps_.index) + "-" + std::to_string(index);
  KILN_RETURN_IF_ERROR(MakeDir(tree));
  auto t = Clock::now();
  Result<CopyResult> r = ExecuteCopy(src, tree, req, svc_.url_fetcher);
  svc_.times->copy += Clock::now() - t;
  if (!r.ok()) return r.status().WithContext(inst.keyword + " failed");
  snap_stale_ = true;
  Status made = OkStatus();
  if (svc_.single_snapshot) {
    // One snapshot of the stage: the files must be in the rootfs for it.
    KILN_RETURN_IF_ERROR(EnsureRootfs());
    Result<CopyResult> again = ExecuteCopy(src, rootfs_, req, svc_.url_fetcher);
    made = again.ok() ? AddPathsLayer(again->changed, inst.original) : again.status();
  } else if (r->changed.empty()) {
    AddHistory(inst.original, true);
  } else {
    layers::LayerChanges lc;
    lc.paths = r->changed;
    made = AddLayerFromChanges(lc, inst.original, tree);
  }
  std::error_code ec;
  std::filesystem::remove_all(tree, ec);
  KILN_RETURN_IF_ERROR(made);
  note_ = std::to_string(r->files) + " files, " + FormatBytes(r->bytes) + ", --link" + (note_.empty() ? "" : "; " + note_);
  return StoreInCache();
}

}  // namespace kiln::executor
