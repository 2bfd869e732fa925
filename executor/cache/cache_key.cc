#include "executor/cache/cache_key.h"

namespace kiln::executor {
namespace {

constexpr std::string_view kVersion = "kiln-cache-key/v1";

void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string PlatformText(const Platform& p) {
  // ToString omits os.version; Windows images differ by it, so it is part of the key.
  return p.ToString() + (p.os_version.empty() ? "" : "@" + p.os_version);
}

}  // namespace

CacheKeyBuilder::CacheKeyBuilder() { Frame(kVersion); }

void CacheKeyBuilder::Frame(std::string_view bytes) {
  PutU64(&buf_, bytes.size());
  buf_.append(bytes);
}

CacheKeyBuilder& CacheKeyBuilder::Add(std::string_view field_name, std::string_view value) {
  buf_.push_back('s');
  Frame(field_name);
  Frame(value);
  return *this;
}

CacheKeyBuilder& CacheKeyBuilder::Add(std::string_view field_name, const Digest& d) {
  buf_.push_back('d');
  Frame(field_name);
  Frame(d.ToString());
  return *this;
}

CacheKeyBuilder& CacheKeyBuilder::AddVars(std::string_view field_name, const CacheVars& vars) {
  buf_.push_back('m');
  Frame(field_name);
  PutU64(&buf_, vars.size());
  for (const auto& [k, v] : vars) {  // std::map iterates in sorted order
    Frame(k);
    Frame(v);
  }
  return *this;
}

Digest CacheKeyBuilder::Finish() const { return Sha256Of(buf_); }

StepKeyInputs StepKeyWithInputs(const Digest& parent, std::string_view instruction, const CacheVars& visible_vars,
                                const Platform& platform, const std::optional<Digest>& sources) {
  StepKeyInputs in;
  in.parent = parent;
  in.instruction = Sha256Of(instruction);
  for (const auto& [k, v] : visible_vars) in.vars[k] = Sha256Of(v);
  in.platform = PlatformText(platform);
  in.sources = sources;
  CacheKeyBuilder b;
  b.Add("kind", "step").Add("parent", parent).Add("instruction", instruction).AddVars("vars", visible_vars);
  b.Add("platform", in.platform);
  if (sources) {
    b.Add("sources", *sources);
  } else {
    b.Add("sources", "none");  // typed 's', so it never equals a digest field
  }
  in.key = b.Finish();
  return in;
}

Digest StepKey(const Digest& parent, std::string_view instruction, const CacheVars& visible_vars,
               const Platform& platform, const std::optional<Digest>& sources) {
  return StepKeyWithInputs(parent, instruction, visible_vars, platform, sources).key;
}

std::string DescribeKeyChange(const StepKeyInputs& before, const StepKeyInputs& now) {
  std::vector<std::string> what;
  if (before.parent != now.parent) what.push_back("an earlier step or the base image changed");
  if (before.instruction != now.instruction) what.push_back("the instruction changed");
  std::vector<std::string> changed, added, removed;
  for (const auto& [k, d] : now.vars) {
    auto it = before.vars.find(k);
    if (it == before.vars.end()) {
      added.push_back(k);
    } else if (it->second != d) {
      changed.push_back(k);
    }
  }
  for (const auto& [k, d] : before.vars) {
    if (!now.vars.count(k)) removed.push_back(k);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (!changed.empty()) what.push_back("build arg or env " + list(changed) + " changed");
  if (!added.empty()) what.push_back("build arg or env " + list(added) + " is new");
  if (!removed.empty()) what.push_back("build arg or env " + list(removed) + " is gone");
  if (before.platform != now.platform) what.push_back("the platform changed (" + before.platform + " → " + now.platform + ")");
  if (before.sources != now.sources) what.push_back("the files it copies changed");
  std::string s;
  for (const auto& w : what) s += (s.empty() ? "" : "; ") + w;
  return s;
}

Digest StageBaseKey(const std::optional<Digest>& base_manifest, std::string_view layer_format) {
  CacheKeyBuilder b;
  b.Add("kind", "stage-base");
  if (base_manifest) {
    b.Add("base", *base_manifest);
  } else {
    b.Add("base", "scratch");
  }
  b.Add("layer-format", layer_format);
  return b.Finish();
}

Digest AfterUncachedStepKey(const Digest& parent, std::string_view instruction, const std::optional<Digest>& diff_id) {
  CacheKeyBuilder b;
  b.Add("kind", "after-uncached").Add("parent", parent).Add("instruction", instruction);
  if (diff_id) {
    b.Add("diff-id", *diff_id);
  } else {
    b.Add("diff-id", "empty");
  }
  return b.Finish();
}

namespace cache_internal {

void AddCopyRequest(CacheKeyBuilder& b, const CopyRequest& req) {
  b.Add("op", req.add ? "ADD" : "COPY");
  b.Add("dest", req.dest).Add("workdir", req.workdir);
  b.Add("chown", req.chown ? std::to_string(req.chown->first) + ":" + std::to_string(req.chown->second) : "-");
  b.Add("chmod", req.chmod ? std::to_string(*req.chmod) : "-");
  b.Add("parents", req.parents ? "1" : "0");
  b.Add("checksum", req.checksum);
  CacheVars list;  // ordered lists framed as index → value
  for (size_t i = 0; i < req.excludes.size(); ++i) list[std::to_string(1000000 + i)] = req.excludes[i];
  b.AddVars("excludes", list);
  list.clear();
  for (size_t i = 0; i < req.sources.size(); ++i) list[std::to_string(1000000 + i)] = req.sources[i];
  b.AddVars("sources", list);
  list.clear();
  for (size_t i = 0; i < req.inline_sources.size(); ++i) {
    // Name and data framed together under the position, so ("a","bc") and ("ab","c") differ.
    const auto& in = req.inline_sources[i];
    std::string framed;
    PutU64(&framed, in.path.size());
    framed += in.path;
    PutU64(&framed, in.data.size());
    framed += in.data;
    list[std::to_string(1000000 + i)] = framed;
  }
  b.AddVars("inline", list);
}

}  // namespace cache_internal

Digest CopyFromKeySources(const Digest& source_key, const CopyRequest& req) {
  CacheKeyBuilder b;
  b.Add("kind", "copy-from-key").Add("source", source_key);
  cache_internal::AddCopyRequest(b, req);
  return b.Finish();
}

}  // namespace kiln::executor
