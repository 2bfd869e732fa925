#include "executor/dockerfile/args.h"

#include <cctype>

namespace kiln::dockerfile {

Result<Platform> ParsePlatform(std::string_view s) {
  KILN_ASSIGN_OR_RETURN(Platform p, Platform::Parse(s));
  if (p.architecture == "arm64" && (p.variant == "v8" || p.variant == "v8.0")) p.variant.clear();
  return p;
}

bool IsProxyArg(std::string_view name) {
  static const char* kProxy[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                                 "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy"};
  for (const char* p : kProxy)
    if (name == p) return true;
  return false;
}

Result<BuildArgs> BuildArgs::FromFlags(const std::vector<std::string>& flags,
                                       const std::map<std::string, std::string>& environ) {
  BuildArgs out;
  for (const std::string& f : flags) {
    size_t eq = f.find('=');
    std::string name = f.substr(0, eq);
    if (name.empty()) return InvalidArgument("invalid --build-arg \"" + f + "\": the name is empty");
    if (eq != std::string::npos) {
      out.values_[name] = f.substr(eq + 1);
      continue;
    }
    auto it = environ.find(name);
    if (it != environ.end()) out.values_[name] = it->second;
  }
  return out;
}

std::optional<std::string> BuildArgs::Get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> BuildArgs::Unused() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values_) {
    if (!used_.count(k) && !IsProxyArg(k)) out.push_back(k);
  }
  return out;
}

namespace {

// BuildKit expands an ARG's name as well as its default (ArgCommand.Expand), with the variables
// set before the instruction: `ENV n=src` then `ARG ${n}=x` declares `src`.
Result<std::string> ExpandArgName(const std::string& written, const Vars& vars, char escape) {
  KILN_ASSIGN_OR_RETURN(std::string key, ExpandWord(written, vars, escape));
  if (key.empty()) return InvalidArgument("ARG name " + written + " expands to an empty name");
  return key;
}

}  // namespace

Vars PlatformArgs(const Platform& target, const Platform& build) {
  return Vars{{"BUILDPLATFORM", build.ToString()},   {"BUILDOS", build.os},
              {"BUILDARCH", build.architecture},     {"BUILDVARIANT", build.variant},
              {"TARGETPLATFORM", target.ToString()}, {"TARGETOS", target.os},
              {"TARGETARCH", target.architecture},   {"TARGETVARIANT", target.variant}};
}

Result<GlobalArgs> ResolveGlobalArgs(const std::vector<Instruction>& meta_args, const BuildArgs& build_args,
                                     const Platform& target, const Platform& build, char escape) {
  GlobalArgs g;
  g.values = PlatformArgs(target, build);
  for (const Instruction& inst : meta_args) {
    const auto& arg = std::get<ArgInst>(inst.cmd);
    for (const ArgDecl& d : arg.args) {
      KILN_ASSIGN_OR_RETURN(std::string key, ExpandArgName(d.key, g.values, escape));
      std::optional<std::string> value;
      if (d.value) {
        KILN_ASSIGN_OR_RETURN(std::string v, ExpandWord(*d.value, g.values, escape));
        value = std::move(v);
      }
      if (auto b = build_args.Get(key)) {
        value = *b;
        build_args.MarkUsed(key);
      }
      g.declared.insert(key);
      if (value) {
        g.values[key] = *value;
      } else if (!PlatformArgs(target, build).count(key)) {
        g.values.erase(key);
      }
    }
  }
  return g;
}

void StageScope::SeedEnv(const std::vector<std::string>& image_env) {
  for (const std::string& kv : image_env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      env_[kv] = "";
    } else {
      env_[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
}

Status StageScope::ApplyArg(const ArgInst& arg, char escape) {
  for (const ArgDecl& d : arg.args) {
    KILN_ASSIGN_OR_RETURN(std::string key, ExpandArgName(d.key, ExpansionVars(), escape));
    std::optional<std::string> value;
    if (d.value) {
      KILN_ASSIGN_OR_RETURN(std::string v, ExpandWord(*d.value, ExpansionVars(), escape));
      value = std::move(v);
    }
    if (build_args_ != nullptr) {
      if (auto b = build_args_->Get(key)) {
        value = *b;
        build_args_->MarkUsed(key);
      }
    }
    if (!value && global_ != nullptr) {
      auto it = global_->values.find(key);
      if (it != global_->values.end()) value = it->second;
    }
    bool found = false;
    for (auto& [k, v] : args_) {
      if (k == key) {
        found = true;
        if (value) v = *value;
      }
    }
    if (value && !found) {
      args_.emplace_back(key, *value);
      unset_args_.erase(key);
    } else if (!value && !found) {
      unset_args_.insert(key);
    }
  }
  return OkStatus();
}

Status StageScope::ApplyEnv(const EnvInst& env, char escape) {
  Vars before = ExpansionVars();
  for (const KeyValue& kv : env.vars) {
    KILN_ASSIGN_OR_RETURN(std::string key, ExpandWord(kv.key, before, escape));
    KILN_ASSIGN_OR_RETURN(std::string value, ExpandWord(kv.value, before, escape));
    env_[key] = value;
  }
  return OkStatus();
}

Vars StageScope::ExpansionVars() const {
  Vars v;
  for (const auto& [k, val] : args_) v[k] = val;
  for (const auto& [k, val] : env_) v[k] = val;
  return v;
}

Vars StageScope::RunEnvironment() const {
  Vars v = ExpansionVars();
  if (build_args_ != nullptr) {
    for (const auto& [k, val] : build_args_->values()) {
      if (IsProxyArg(k)) v.emplace(k, val);
    }
  }
  return v;
}

}  // namespace kiln::dockerfile
