// Reading a policy file with yaml-cpp (JSON is YAML, so one parser reads both). yaml-cpp reports
// problems by throwing; every exception is caught here and becomes a Status with the file's position.
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <functional>

#include "core/io.h"
#include "executor/dockerfile/errors.h"
#include "executor/policy/policy.h"

namespace kiln::policy {
namespace {

constexpr size_t kMaxPolicyBytes = 1 << 20;

class YamlReader {
 public:
  explicit YamlReader(std::string origin) : origin_(std::move(origin)) {}

  Status ErrorAt(const YAML::Node& n, const std::string& message) const {
    YAML::Mark m = n.Mark();
    if (m.is_null()) return InvalidArgument(origin_ + ": " + message);
    return InvalidArgument(origin_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " +
                           message);
  }

  // Calls `on_key` for each key of the map `n` (at `path`); a key not in `known` is an error.
  Status ForEachKey(const YAML::Node& n, const std::string& path, const std::vector<std::string>& known,
                    const std::function<Status(const std::string&, const YAML::Node&)>& on_key) const {
    if (n.IsNull()) return OkStatus();
    if (!n.IsMap()) return ErrorAt(n, (path.empty() ? "the policy" : path) + " must be a mapping of keys");
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) return ErrorAt(kv.first, "a key in " + (path.empty() ? "the policy" : path) + " is not a name");
      std::string key = kv.first.Scalar();
      std::string full = path.empty() ? key : path + "." + key;
      bool found = false;
      for (const std::string& k : known) found = found || k == key;
      if (!found) {
        std::string list;
        for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
        return ErrorAt(kv.first, "unknown key " + full + dockerfile::DidYouMean(key, known, false) + " (" +
                                     (path.empty() ? "top-level keys" : "keys of " + path) + ": " + list + ")");
      }
      KILN_RETURN_IF_ERROR(on_key(full, kv.second));
    }
    return OkStatus();
  }

  Result<bool> Bool(const YAML::Node& n, const std::string& path) const {
    if (n.IsScalar()) {
      std::string v = n.Scalar();
      if (v == "true" || v == "True" || v == "TRUE") return true;
      if (v == "false" || v == "False" || v == "FALSE") return false;
    }
    return ErrorAt(n, path + " must be true or false");
  }

  Result<std::vector<std::string>> Strings(const YAML::Node& n, const std::string& path) const {
    std::vector<std::string> out;
    if (n.IsNull()) return out;
    if (!n.IsSequence()) return ErrorAt(n, path + " must be a list of strings");
    for (const YAML::Node& item : n) {
      if (!item.IsScalar() || item.Scalar().empty()) return ErrorAt(item, path + " must hold non-empty strings");
      out.push_back(item.Scalar());
    }
    return out;
  }

  Result<std::vector<Pattern>> Patterns(const YAML::Node& n, const std::string& path) const {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> texts, Strings(n, path));
    std::vector<Pattern> out;
    for (size_t i = 0; i < texts.size(); ++i) {
      dockerfile::GlobOptions opts;
      opts.double_star = true;
      Result<dockerfile::Glob> g = dockerfile::Glob::Compile(texts[i], opts);
      if (!g.ok()) return ErrorAt(n[i], path + ": " + g.status().message());
      out.push_back(Pattern{texts[i], std::move(g).value()});
    }
    return out;
  }

 private:
  std::string origin_;
};

Status ReadPolicy(const YamlReader& r, const YAML::Node& root, Policy& p) {
  return r.ForEachKey(root, "", {"version", "bases", "user", "labels", "add", "mounts", "image"},
                      [&](const std::string& path, const YAML::Node& n) -> Status {
    if (path == "version") {
      if (!n.IsScalar() || n.Scalar() != "1") return r.ErrorAt(n, "version must be 1 (the only schema so far)");
      return OkStatus();
    }
    if (path == "bases") {
      return r.ForEachKey(n, path, {"allow", "forbid_tags", "allow_tags", "require_digest"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "bases.allow") { KILN_ASSIGN_OR_RETURN(p.bases.allow, r.Patterns(v, key)); }
        if (key == "bases.forbid_tags") { KILN_ASSIGN_OR_RETURN(p.bases.forbid_tags, r.Patterns(v, key)); }
        if (key == "bases.allow_tags") { KILN_ASSIGN_OR_RETURN(p.bases.allow_tags, r.Patterns(v, key)); }
        if (key == "bases.require_digest") { KILN_ASSIGN_OR_RETURN(p.bases.require_digest, r.Bool(v, key)); }
        return OkStatus();
      });
    }
    if (path == "user") {
      return r.ForEachKey(n, path, {"require_non_root", "allow"}, [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "user.require_non_root") { KILN_ASSIGN_OR_RETURN(p.user.require_non_root, r.Bool(v, key)); }
        if (key == "user.allow") { KILN_ASSIGN_OR_RETURN(p.user.allow, r.Strings(v, key)); }
        return OkStatus();
      });
    }
    if (path == "labels") {
      return r.ForEachKey(n, path, {"required"}, [&](const std::string& key, const YAML::Node& v) -> Status {
        KILN_ASSIGN_OR_RETURN(p.required_labels, r.Strings(v, key));
        return OkStatus();
      });
    }
    if (path == "add") {
      return r.ForEachKey(n, path, {"require_checksum"}, [&](const std::string& key, const YAML::Node& v) -> Status {
        KILN_ASSIGN_OR_RETURN(p.add_require_checksum, r.Bool(v, key));
        return OkStatus();
      });
    }
    if (path == "mounts") {
      return r.ForEachKey(n, path, {"allow"}, [&](const std::string& key, const YAML::Node& v) -> Status {
        KILN_ASSIGN_OR_RETURN(std::vector<std::string> types, r.Strings(v, key));
        static const std::vector<std::string> kTypes = {"bind", "cache", "tmpfs", "secret", "ssh"};
        for (size_t i = 0; i < types.size(); ++i) {
          bool known = false;
          for (const std::string& t : kTypes) known = known || t == types[i];
          if (!known) {
            return r.ErrorAt(v[i], key + ": unknown mount type \"" + types[i] + "\"" +
                                       dockerfile::DidYouMean(types[i], kTypes, true) +
                                       " (bind, cache, tmpfs, secret, ssh)");
          }
        }
        p.mounts_allow = types;
        return OkStatus();
      });
    }
    // image
    return r.ForEachKey(n, path, {"max_size"}, [&](const std::string& key, const YAML::Node& v) -> Status {
      if (!v.IsScalar()) return r.ErrorAt(v, key + " must be a size such as 500m or 2g");
      Result<uint64_t> bytes = ParseSize(v.Scalar());
      if (!bytes.ok()) return r.ErrorAt(v, key + ": " + bytes.status().message());
      p.max_image_bytes = *bytes;
      return OkStatus();
    });
  });
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view s) {
  std::string bad = "must be a size such as 500m or 2g (bytes, or k, m, g, t), not \"" + std::string(s) + "\"";
  size_t i = 0;
  uint64_t n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (n > (UINT64_MAX - 9) / 10) return InvalidArgument(bad);
    n = n * 10 + static_cast<uint64_t>(s[i] - '0');
    ++i;
  }
  if (i == 0) return InvalidArgument(bad);
  std::string unit;
  for (; i < s.size(); ++i) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  if (unit.size() == 2 && unit[1] == 'b') unit.pop_back();
  int shift = 0;
  if (unit.empty() || unit == "b") shift = 0;
  else if (unit == "k") shift = 10;
  else if (unit == "m") shift = 20;
  else if (unit == "g") shift = 30;
  else if (unit == "t") shift = 40;
  else return InvalidArgument(bad);
  if (shift > 0 && n > (UINT64_MAX >> shift)) return InvalidArgument(bad);
  return n << shift;
}

Result<Policy> ParsePolicy(std::string_view text, std::string origin) {
  Policy p;
  p.origin = origin;
  YamlReader r(origin);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
    KILN_RETURN_IF_ERROR(ReadPolicy(r, root, p));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return InvalidArgument(origin + ": " + e.msg);
    return InvalidArgument(origin + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                           ": " + e.msg);
  }
  return p;
}

Result<Policy> LoadPolicyFile(const std::string& path, std::string origin) {
  if (origin.empty()) origin = path;
  Result<std::unique_ptr<kiln::Reader>> file = OpenFileReader(path);
  if (!file.ok()) return file.status().WithContext("reading the policy " + origin);
  Result<std::string> text = ReadAll(**file, kMaxPolicyBytes);
  if (!text.ok()) return text.status().WithContext("reading the policy " + origin);
  return ParsePolicy(*text, origin);
}

Result<std::vector<Policy>> LoadPolicies(const std::vector<std::string>& policy_files,
                                         const std::map<std::string, std::string>& environ) {
  std::vector<Policy> out;
  if (auto it = environ.find("KILN_POLICY"); it != environ.end() && !it->second.empty()) {
    KILN_ASSIGN_OR_RETURN(Policy p, LoadPolicyFile(it->second, "$KILN_POLICY (" + it->second + ")"));
    out.push_back(std::move(p));
  }
  for (const std::string& f : policy_files) {
    KILN_ASSIGN_OR_RETURN(Policy p, LoadPolicyFile(f));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace kiln::policy
