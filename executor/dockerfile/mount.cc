#include "executor/dockerfile/mount.h"

#include <cctype>
#include <cmath>

#include "executor/dockerfile/errors.h"

namespace kiln::dockerfile {

std::string_view MountTypeName(MountType t) {
  switch (t) {
    case MountType::kBind: return "bind";
    case MountType::kCache: return "cache";
    case MountType::kTmpfs: return "tmpfs";
    case MountType::kSecret: return "secret";
    case MountType::kSsh: return "ssh";
  }
  return "bind";
}

namespace {

// Go encoding/csv, one record, default options.
Result<std::vector<std::string>> ReadCsvRecord(std::string_view in) {
  if (in.empty()) return InvalidArgument("failed to parse csv mounts: EOF");
  std::vector<std::string> fields;
  size_t i = 0;
  for (;;) {
    std::string field;
    if (i < in.size() && in[i] == '"') {
      ++i;
      for (;;) {
        if (i >= in.size())
          return InvalidArgument("failed to parse csv mounts: parse error on line 1, column " + std::to_string(i + 1) +
                                 ": extraneous or missing \" in quoted-field");
        if (in[i] == '"') {
          if (i + 1 < in.size() && in[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          if (i < in.size() && in[i] != ',')
            return InvalidArgument("failed to parse csv mounts: parse error on line 1, column " + std::to_string(i + 1) +
                                   ": extraneous or missing \" in quoted-field");
          break;
        }
        field += in[i++];
      }
    } else {
      while (i < in.size() && in[i] != ',') {
        if (in[i] == '"')
          return InvalidArgument("failed to parse csv mounts: parse error on line 1, column " + std::to_string(i + 1) +
                                 ": bare \" in non-quoted-field");
        field += in[i++];
      }
    }
    fields.push_back(std::move(field));
    if (i >= in.size()) break;
    ++i;  // ','
  }
  return fields;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<bool> ParseGoBool(const std::string& key, const std::string& v) {
  if (v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "true" || v == "True") return true;
  if (v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "false" || v == "False") return false;
  return InvalidArgument("invalid value for " + key + ": " + v);
}

Result<uint32_t> ParseUint(const std::string& v, int base, const std::string& what) {
  if (v.empty() || v.size() > 12) return InvalidArgument("invalid value " + v + " for " + what);
  uint64_t n = 0;
  for (char c : v) {
    int d = c - '0';
    if (d < 0 || d >= base) return InvalidArgument("invalid value " + v + " for " + what);
    n = n * base + d;
  }
  if (n > 0xffffffffULL) return InvalidArgument("invalid value " + v + " for " + what);
  return static_cast<uint32_t>(n);
}

}  // namespace

Result<int64_t> ParseRamInBytes(std::string_view s) {
  auto bad = [&] { return InvalidArgument("invalid size: '" + std::string(s) + "'"); };
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0) return bad();
  while (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i + 1) return bad();
    i = j;
  }
  long double v = std::strtold(std::string(s.substr(0, i)).c_str(), nullptr);
  if (i < s.size() && s[i] == ' ') ++i;
  long double mult = 1;
  if (i < s.size()) {
    switch (std::tolower(static_cast<unsigned char>(s[i]))) {
      case 'k': mult = 1024.0L; ++i; break;
      case 'm': mult = 1024.0L * 1024; ++i; break;
      case 'g': mult = 1024.0L * 1024 * 1024; ++i; break;
      case 't': mult = 1024.0L * 1024 * 1024 * 1024; ++i; break;
      case 'p': mult = 1024.0L * 1024 * 1024 * 1024 * 1024; ++i; break;
      default: break;
    }
  }
  if (i < s.size() && (s[i] == 'i' || s[i] == 'I')) ++i;
  if (i < s.size() && (s[i] == 'b' || s[i] == 'B')) ++i;
  if (i != s.size()) return bad();
  long double total = v * mult;
  if (total > 9.2e18L) return bad();
  return static_cast<int64_t>(total);
}

Result<MountSpec> ParseMountSpec(std::string_view value) {
  MountSpec spec;
  spec.raw = std::string(value);
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> fields, ReadCsvRecord(value));
  for (const std::string& field : fields) {
    MountField f;
    size_t eq = field.find('=');
    f.has_value = eq != std::string::npos;
    f.key = Lower(field.substr(0, eq));
    if (f.has_value) f.value = field.substr(eq + 1);
    if (f.key == "from" && f.has_value) {
      // BuildKit rejects `\$.` here: the plan must know a mount's source stage before any variables exist.
      if (f.value.find('$') != std::string::npos && f.value.find('$') + 1 < f.value.size())
        return InvalidArgument("'from' doesn't support variable expansion, define alias stage instead");
      spec.from = f.value;
    }
    spec.fields.push_back(std::move(f));
  }
  return spec;
}

Result<Mount> ResolveMount(const MountSpec& spec, const Vars& env, char escape) {
  Mount m;
  bool ro_auto = true;
  bool sharing_set = false;
  static const std::vector<std::string> kKeys = {"type", "from", "source", "target", "readonly", "id", "sharing",
                                                 "required", "mode", "uid", "gid", "src", "dst", "ro", "rw",
                                                 "readwrite", "destination", "size", "env"};
  for (const MountField& f : spec.fields) {
    const std::string& key = f.key;
    if (!f.has_value) {
      if (key == "readonly" || key == "ro") {
        m.read_only = true;
        ro_auto = false;
      } else if (key == "readwrite" || key == "rw") {
        m.read_only = false;
        ro_auto = false;
      } else if (key == "required") {
        if (m.type != MountType::kSecret && m.type != MountType::kSsh)
          return InvalidArgument("unexpected key '" + key + "' for mount type '" + std::string(MountTypeName(m.type)) + "'");
        m.required = true;
      } else {
        return InvalidArgument("invalid field '" + key + "' must be a key=value pair");
      }
      continue;
    }
    KILN_ASSIGN_OR_RETURN(std::string value, ExpandWord(f.value, env, escape));
    if (key == "type") {
      std::string t = Lower(value);
      if (t == "bind") m.type = MountType::kBind;
      else if (t == "cache") m.type = MountType::kCache;
      else if (t == "tmpfs") m.type = MountType::kTmpfs;
      else if (t == "secret") m.type = MountType::kSecret;
      else if (t == "ssh") m.type = MountType::kSsh;
      else
        return InvalidArgument("unsupported mount type \"" + value + "\"" +
                               DidYouMean(value, {"bind", "cache", "tmpfs", "secret", "ssh"}, true));
    } else if (key == "from") {
      m.from = value;
    } else if (key == "source" || key == "src") {
      m.source = value;
    } else if (key == "target" || key == "dst" || key == "destination") {
      m.target = value;
    } else if (key == "readonly" || key == "ro") {
      KILN_ASSIGN_OR_RETURN(m.read_only, ParseGoBool(key, value));
      ro_auto = false;
    } else if (key == "readwrite" || key == "rw") {
      KILN_ASSIGN_OR_RETURN(bool rw, ParseGoBool(key, value));
      m.read_only = !rw;
      ro_auto = false;
    } else if (key == "required") {
      if (m.type != MountType::kSecret && m.type != MountType::kSsh)
        return InvalidArgument("unexpected key '" + key + "' for mount type '" + std::string(MountTypeName(m.type)) + "'");
      KILN_ASSIGN_OR_RETURN(m.required, ParseGoBool(key, value));
    } else if (key == "size") {
      if (m.type != MountType::kTmpfs)
        return InvalidArgument("unexpected key '" + key + "' for mount type '" + std::string(MountTypeName(m.type)) + "'");
      Result<int64_t> size = ParseRamInBytes(value);
      if (!size.ok()) return InvalidArgument("invalid value for " + key + ": " + value);
      m.size_limit = *size;
    } else if (key == "id") {
      m.id = value;
    } else if (key == "env") {
      if (m.type != MountType::kSecret)
        return InvalidArgument("unexpected key '" + key + "' for mount type '" + std::string(MountTypeName(m.type)) + "'");
      m.env = value;
    } else if (key == "sharing") {
      std::string v = Lower(value);
      if (v != "shared" && v != "private" && v != "locked")
        return InvalidArgument("unsupported sharing value \"" + value + "\"" +
                               DidYouMean(value, {"shared", "private", "locked"}, true));
      m.sharing = v;
      sharing_set = true;
    } else if (key == "mode") {
      KILN_ASSIGN_OR_RETURN(m.mode, ParseUint(value, 8, "mode"));
    } else if (key == "uid") {
      KILN_ASSIGN_OR_RETURN(m.uid, ParseUint(value, 10, "uid"));
    } else if (key == "gid") {
      KILN_ASSIGN_OR_RETURN(m.gid, ParseUint(value, 10, "gid"));
    } else {
      return InvalidArgument("unexpected key '" + key + "' in '" + key + "=" + f.value + "'" + DidYouMean(key, kKeys, false));
    }
  }
  bool file_info = m.type == MountType::kSecret || m.type == MountType::kSsh || m.type == MountType::kCache;
  std::string tn = "\"" + std::string(MountTypeName(m.type)) + "\"";
  if (!file_info) {
    if (m.mode) return InvalidArgument("mode not allowed for " + tn + " type mounts");
    if (m.uid) return InvalidArgument("uid not allowed for " + tn + " type mounts");
    if (m.gid) return InvalidArgument("gid not allowed for " + tn + " type mounts");
  }
  if (ro_auto) m.read_only = !(m.type == MountType::kCache || m.type == MountType::kTmpfs);
  if (m.type == MountType::kSecret) {
    if (!m.from.empty()) return InvalidArgument("secret mount should not have a from");
    if (sharing_set) return InvalidArgument("secret mount should not define sharing");
    if (m.source.empty() && m.target.empty() && m.id.empty() && m.env.empty())
      return InvalidArgument("invalid secret mount. one of source, target required");
    if (!m.source.empty() && !m.id.empty()) return InvalidArgument("both source and id can't be set");
  }
  if (sharing_set && m.type != MountType::kCache)
    return InvalidArgument("invalid cache sharing set for " + std::string(MountTypeName(m.type)) + " mount");
  return m;
}

}  // namespace kiln::dockerfile
