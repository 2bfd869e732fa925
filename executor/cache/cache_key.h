// Layer cache keys: sha256 over an unambiguous, length-framed encoding of everything a step's result
// depends on, so two different steps never share a key.
//
// Encoding (version "kiln-cache-key/v1", written first): each field is a type byte ('s' string,
// 'd' digest, 'm' map), the field name framed as <u64 big-endian length><bytes>, then the value:
// a string or digest framed the same way; a map as <u64 count> and each key and value framed, in
// sorted key order. So ("ab","c") and ("a","bc") differ, and a map's insertion order does not matter.
//
// What a step's key covers (StepKey): the parent key (chaining every earlier step, metadata steps
// included, so USER, WORKDIR, SHELL and ENV changes reach every later step), the instruction after
// substitution, the variables the step can see, the target platform, and for COPY/ADD the digest of
// what it reads (HashCopySources). mtimes and atimes of sources are deliberately NOT covered (as in
// BuildKit and Kaniko): CI checkouts give every file a new mtime, which would defeat the cache.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/digest.h"
#include "core/image_model.h"
#include "core/status.h"
#include "executor/steps/copy_step.h"

namespace kiln::executor {

using CacheVars = std::map<std::string, std::string, std::less<>>;

/// Accumulates framed fields; Finish() hashes them. Cheap to copy; not thread-safe.
class CacheKeyBuilder {
 public:
  CacheKeyBuilder();
  /// Adds a string field (name and value length-framed).
  CacheKeyBuilder& Add(std::string_view field_name, std::string_view value);
  /// Adds a digest field (typed apart from a string holding the same text).
  CacheKeyBuilder& Add(std::string_view field_name, const Digest& d);
  /// Adds a map field: every entry framed, in sorted order.
  CacheKeyBuilder& AddVars(std::string_view field_name, const CacheVars& vars);
  /// sha256 of the encoding so far. The builder stays usable.
  Digest Finish() const;

 private:
  void Frame(std::string_view bytes);
  std::string buf_;
};

/// What went into a step key, value by value, so that a miss can say which input changed. Holds
/// digests only (never a variable's value), one per input.
struct StepKeyInputs {
  Digest key;
  Digest parent;
  Digest instruction;                 ///< sha256 of the instruction text
  std::map<std::string, Digest> vars;  ///< per variable: sha256 of its value
  std::string platform;
  std::optional<Digest> sources;
};

/// The key of one step. `parent`: the previous step's key, or StageBaseKey() for the first step of a
/// stage (for a stage built FROM another stage: that stage's last key). `instruction`: the step after
/// substitution (for RUN: the command as it will run, heredoc bodies included). `visible_vars`: what
/// the step can see (see the report for which ones per instruction). `sources`: COPY/ADD only.
Digest StepKey(const Digest& parent, std::string_view instruction, const CacheVars& visible_vars,
               const Platform& platform, const std::optional<Digest>& sources);
/// StepKey, also returning its inputs (`.key` is the same digest StepKey returns).
StepKeyInputs StepKeyWithInputs(const Digest& parent, std::string_view instruction, const CacheVars& visible_vars,
                                const Platform& platform, const std::optional<Digest>& sources);

/// Says which inputs differ between an earlier build's step and this one, for the log: e.g.
/// "build arg or env VERSION changed", "the files it copies changed", "an earlier step changed".
/// "" when nothing differs (the entry then expired or was evicted).
std::string DescribeKeyChange(const StepKeyInputs& before, const StepKeyInputs& now);

/// The parent key of a stage's first step. `base_manifest`: the base image's platform manifest
/// digest (never its name); nullopt for scratch. `layer_format`: whatever makes layers of the same
/// files differ as blobs (compression and level, SOURCE_DATE_EPOCH), so builds with different
/// settings sharing one cache never get a blob of the wrong format.
Digest StageBaseKey(const std::optional<Digest>& base_manifest, std::string_view layer_format);

/// The parent for the step after one that could not be keyed (an ADD of a URL without --checksum):
/// chained on what the step produced (its layer's diff_id, nullopt for no change), so later steps
/// still hit when the download was the same.
Digest AfterUncachedStepKey(const Digest& parent, std::string_view instruction, const std::optional<Digest>& diff_id);

/// Hash of what a COPY/ADD would read from `source`, selected exactly as ExecuteCopy selects it
/// (globs, directory contents, .dockerignore with its exceptions, --exclude, top-level symlinks
/// followed): for each selected entry its path, type, mode, size, content sha256, symlink target,
/// hardlink grouping, device numbers, and uid/gid only for --from sources (from the rootless xattr
/// when present); heredoc sources by name and data; URLs (ADD) by URL and --checksum. The request's
/// own fields (dest, workdir, chown, chmod, parents, excludes) are covered too.
/// Returns nullopt when the step must never be cached (ADD of a URL without --checksum: its content
/// can change behind the same URL). An error means the selection failed (a missing source, a git
/// URL): run the step uncached, and it reports the real error.
Result<std::optional<Digest>> HashCopySources(const CopySource& source, const CopyRequest& req);

/// The sources digest for COPY --from=STAGE (or an image) when the source's files are known by key:
/// the source's key (its last step key, or StageBaseKey of the image) plus the request's fields.
/// Needs no rootfs, so a stage that was all cache hits need not be extracted.
Digest CopyFromKeySources(const Digest& source_key, const CopyRequest& req);

namespace cache_internal {
/// Adds the CopyRequest fields that shape the result (shared by the two sources digests).
void AddCopyRequest(CacheKeyBuilder& b, const CopyRequest& req);
}  // namespace cache_internal

}  // namespace kiln::executor
