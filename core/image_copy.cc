#include "core/image_copy.h"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "core/media_types.h"

namespace kiln {
namespace {

struct Plan {
  std::vector<RawManifest> children;  // post-order: a nested index after its own children
  std::vector<Descriptor> blobs;      // unique by digest
  std::set<Digest> seen;
};

Status Collect(ImageSource& src, const RawManifest& m, const CopyOptions& opt, Plan& plan, int depth) {
  if (depth > 4) return Unsupported("indexes nested more than 4 deep in " + src.Describe());
  KILN_ASSIGN_OR_RETURN(ManifestKind kind, DetectManifestKind(m.bytes, m.media_type));
  if (kind == ManifestKind::kIndex) {
    KILN_ASSIGN_OR_RETURN(Index idx, ParseIndex(m.bytes));
    for (const Descriptor& d : idx.manifests) {
      KILN_ASSIGN_OR_RETURN(RawManifest child, src.GetManifest(d));
      KILN_RETURN_IF_ERROR(Collect(src, child, opt, plan, depth + 1));
      plan.children.push_back(std::move(child));
    }
    return OkStatus();
  }
  KILN_ASSIGN_OR_RETURN(Manifest man, ParseManifest(m.bytes));
  auto add = [&](const Descriptor& d) {
    if (plan.seen.insert(d.digest).second) plan.blobs.push_back(d);
  };
  add(man.config);
  for (const Descriptor& l : man.layers) {
    if (media_type::IsNondistributable(l.media_type) && !opt.copy_nondistributable) continue;
    add(l);
  }
  return OkStatus();
}

}  // namespace

Result<CopyResult> CopyImage(ImageSource& src, ImageSink& sink, const CopyOptions& opt) {
  std::string what = "copying " + src.Describe() + " to " + sink.Describe();
  CopyResult result;
  auto root = src.RootManifest();
  if (!root.ok()) return root.status().WithContext(what);
  result.root = std::move(root).value();
  auto kind = DetectManifestKind(result.root.bytes, result.root.media_type);
  if (!kind.ok()) return kind.status().WithContext(what);
  if (*kind == ManifestKind::kIndex && opt.platform) {
    auto idx = ParseIndex(result.root.bytes);
    if (!idx.ok()) return idx.status().WithContext(what);
    auto d = SelectPlatform(*idx, *opt.platform);
    if (!d.ok()) return d.status().WithContext(what);
    auto child = src.GetManifest(*d);
    if (!child.ok()) return child.status().WithContext(what);
    result.root = std::move(child).value();
  }

  if (*kind == ManifestKind::kIndex && !opt.platform && !sink.AcceptsIndex()) {
    return Unsupported(what + ": " + sink.Describe() +
                       " holds single images, not an index of several platforms; choose one with --platform");
  }
  Plan plan;
  if (Status s = Collect(src, result.root, opt, plan, 0); !s.ok()) return s.WithContext(what);

  // Blobs first, in parallel. The first failure stops workers from starting new blobs.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= plan.blobs.size()) return;
      const Descriptor& d = plan.blobs[i];
      Status s;
      BlobPresence presence = BlobPresence::kAbsent;
      uint64_t bytes = 0;
      auto has = sink.HasBlob(d, src);
      if (!has.ok()) {
        s = has.status();
      } else if (*has != BlobPresence::kAbsent) {
        presence = *has;
      } else {
        for (int attempt = 1; attempt <= std::max(1, opt.blob_attempts); ++attempt) {
          auto reader = src.OpenBlob(d);
          s = reader.ok() ? sink.PutBlob(d, **reader) : reader.status();
          if (s.ok() || !s.temporary()) break;
        }
        bytes = static_cast<uint64_t>(std::max<int64_t>(d.size, 0));
      }
      std::lock_guard<std::mutex> lock(mu);
      if (!s.ok()) {
        if (first_error.ok()) first_error = s.WithContext("blob " + d.digest.ToString());
        failed = true;
        return;
      }
      BlobEvent event{d, BlobEvent::Action::kCopied};
      if (presence == BlobPresence::kPresent) {
        ++result.blobs_skipped;
        event.action = BlobEvent::Action::kSkipped;
      } else if (presence == BlobPresence::kMounted) {
        ++result.blobs_mounted;
        event.action = BlobEvent::Action::kMounted;
      } else {
        ++result.blobs_copied;
        result.bytes_copied += bytes;
      }
      if (opt.on_blob) opt.on_blob(event);
    }
  };
  int n = std::max(1, std::min<int>(opt.parallel, static_cast<int>(plan.blobs.size())));
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (!first_error.ok()) return first_error.WithContext(what);

  // Then manifests: children (by digest) before the index that names them, the tagged root last.
  for (const RawManifest& m : plan.children) {
    if (Status s = sink.PutManifest(m); !s.ok()) return s.WithContext(what);
  }
  if (Status s = sink.PutRoot(result.root); !s.ok()) return s.WithContext(what);
  return result;
}

}  // namespace kiln
