#include "executor/dockerfile/flags.h"

#include <cctype>
#include <cmath>

namespace kiln::dockerfile {
namespace {

// Every flag some instruction accepts, to tell "not allowed here" from "does not exist".
const std::map<std::string, std::vector<std::string>>& FlagOwners() {
  static const auto* owners = new std::map<std::string, std::vector<std::string>>{
      {"platform", {"FROM"}},
      {"mount", {"RUN"}},
      {"network", {"RUN"}},
      {"security", {"RUN"}},
      {"from", {"COPY"}},
      {"parents", {"COPY"}},
      {"chown", {"ADD", "COPY"}},
      {"chmod", {"ADD", "COPY"}},
      {"link", {"ADD", "COPY"}},
      {"exclude", {"ADD", "COPY"}},
      {"checksum", {"ADD"}},
      {"keep-git-dir", {"ADD"}},
      {"unpack", {"ADD"}},
      {"interval", {"HEALTHCHECK"}},
      {"timeout", {"HEALTHCHECK"}},
      {"start-period", {"HEALTHCHECK"}},
      {"start-interval", {"HEALTHCHECK"}},
      {"retries", {"HEALTHCHECK"}},
  };
  return *owners;
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

}  // namespace

Status FlagSet::Parse(const std::vector<RawFlag>& flags, const Source& src) {
  for (const RawFlag& f : flags) {
    std::string arg = f.text.substr(2);
    std::string value;
    bool has_eq = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      has_eq = true;
      value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    auto def = defs_.find(arg);
    if (def == defs_.end()) {
      std::vector<std::string> accepted;
      for (const auto& [name, _] : defs_) accepted.push_back("--" + name);
      auto owner = FlagOwners().find(arg);
      if (owner != FlagOwners().end()) {
        std::string msg = "flag --" + arg + " is not allowed on " + keyword_ + " (it belongs to " + Join(owner->second, " and ") + ")";
        if (accepted.empty()) msg += "; " + keyword_ + " takes no flags";
        return src.ErrorAt(f.loc, msg);
      }
      std::string msg = "unknown flag: --" + arg;
      if (accepted.empty()) {
        msg += " (" + keyword_ + " takes no flags)";
      } else {
        // Flag names are case-sensitive; "--FROM" is still plainly a typo of "--from".
        std::string suggestion = DidYouMean("--" + arg, accepted, false);
        if (suggestion.empty()) suggestion = DidYouMean("--" + arg, accepted, true);
        msg += suggestion;
      }
      return src.ErrorAt(f.loc, msg);
    }
    if (values_.count(arg) && def->second != Type::kStrings) return src.ErrorAt(f.loc, "duplicate flag specified: --" + arg);
    if (!where_.count(arg)) where_[arg] = f.loc;
    switch (def->second) {
      case Type::kBool: {
        if (has_eq && value.empty()) return src.ErrorAt(f.loc, "missing a value on flag: --" + arg);
        std::string lower;
        for (char c : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower.empty()) lower = "true";
        if (lower != "true" && lower != "false")
          return src.ErrorAt(f.loc, "expecting boolean value for flag --" + arg + ", not: " + value);
        values_[arg] = {lower};
        break;
      }
      case Type::kString:
      case Type::kStrings:
        if (!has_eq) return src.ErrorAt(f.loc, "missing a value on flag: --" + arg);
        values_[arg].push_back(value);
        break;
    }
  }
  return OkStatus();
}

std::string FlagSet::String(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? "" : it->second.back();
}

bool FlagSet::Bool(const std::string& name) const { return String(name) == "true"; }

std::vector<std::string> FlagSet::Strings(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

Location FlagSet::Where(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? Location{} : it->second;
}

Result<int64_t> ParseGoDuration(std::string_view orig) {
  auto invalid = [&] { return InvalidArgument("time: invalid duration \"" + std::string(orig) + "\""); };
  std::string_view s = orig;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return int64_t{0};
  if (s.empty()) return invalid();
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    long double v = 0;
    bool digits = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      v = v * 10 + (s[i] - '0');
      ++i;
      digits = true;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        v += (s[i] - '0') * scale;
        scale /= 10;
        ++i;
        digits = true;
      }
    }
    if (!digits) return invalid();
    size_t u = i;
    while (u < s.size() && s[u] != '.' && !std::isdigit(static_cast<unsigned char>(s[u]))) ++u;
    std::string_view unit = s.substr(i, u - i);
    if (unit.empty()) return InvalidArgument("time: missing unit in duration \"" + std::string(orig) + "\"");
    long double mult;
    if (unit == "ns") mult = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mult = 1e3L;
    else if (unit == "ms") mult = 1e6L;
    else if (unit == "s") mult = 1e9L;
    else if (unit == "m") mult = 60e9L;
    else if (unit == "h") mult = 3600e9L;
    else return InvalidArgument("time: unknown unit \"" + std::string(unit) + "\" in duration \"" + std::string(orig) + "\"");
    total += v * mult;
    if (total > 9.2e18L) return invalid();
    s.remove_prefix(u);
  }
  int64_t ns = static_cast<int64_t>(std::llround(total));
  return neg ? -ns : ns;
}

}  // namespace kiln::dockerfile
