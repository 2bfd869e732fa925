#include "executor/dockerfile/checks.h"

#include <cctype>

#include "executor/dockerfile/words.h"

namespace kiln::dockerfile {
namespace {

const std::set<std::string>& KnownRules() {
  static const std::set<std::string> rules = {"SecretsUsedInArgOrEnv", "JSONArgsRecommended", "StageNameCasing",
                                              "FromAsCasing"};
  return rules;
}

std::vector<std::string> Words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool AllUpper(std::string_view s) {
  for (char c : s) {
    if (std::islower(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool AllLower(std::string_view s) {
  for (char c : s) {
    if (std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

class Checker {
 public:
  Checker(const Dockerfile& df, const CheckConfig& config) : df_(df), config_(config) {}

  std::vector<CheckFinding> Run() {
    for (const Instruction& inst : df_.meta_args) Check(inst);
    for (const ParsedStage& stage : df_.stages) {
      Check(stage.from);
      for (const Instruction& inst : stage.commands) Check(inst);
    }
    return std::move(findings_);
  }

 private:
  void Add(const std::string& rule, const Instruction& inst, const std::string& message) {
    if (config_.skip_all || config_.skip.count(rule)) return;
    findings_.push_back({rule, message, inst.loc, df_.source.Format(inst.loc, rule + ": " + message)});
  }

  void Check(const Instruction& inst) {
    if (inst.from_onbuild) return;  // the base image's author wrote those
    if (const auto* arg = std::get_if<ArgInst>(&inst.cmd)) {
      for (const ArgDecl& d : arg->args) SecretName(inst, "ARG", d.key);
    } else if (const auto* env = std::get_if<EnvInst>(&inst.cmd)) {
      for (const KeyValue& kv : env->vars) SecretName(inst, "ENV", kv.key);
    } else if (const auto* cmd = std::get_if<CmdInst>(&inst.cmd)) {
      ShellForm(inst, "CMD", cmd->cmd);
    } else if (const auto* ep = std::get_if<EntrypointInst>(&inst.cmd)) {
      ShellForm(inst, "ENTRYPOINT", ep->cmd);
    } else if (std::holds_alternative<FromInst>(inst.cmd)) {
      FromCasing(inst);
    }
  }

  void SecretName(const Instruction& inst, const std::string& what, const std::string& key) {
    if (!LooksLikeSecretName(key)) return;
    Add("SecretsUsedInArgOrEnv", inst,
        "do not use " + what + " for secrets (key named \"" + key + "\"): its value stays in the image's " +
            (what == "ENV" ? "config" : "history") + "; a secret belongs in a secret mount (RUN --mount=type=secret,id=" +
            key + ", given with kiln build --secret id=" + key + ",env=" + key + ")");
  }

  void ShellForm(const Instruction& inst, const std::string& what, const CommandLine& cmd) {
    if (cmd.exec_form || cmd.args.empty()) return;
    Add("JSONArgsRecommended", inst,
        "JSON arguments recommended for " + what + " to prevent unintended behavior related to OS signals (" + what +
            " [\"executable\", \"arg\"] runs without /bin/sh in between)");
  }

  void FromCasing(const Instruction& inst) {
    // FROM [--platform=…] image [AS name], as written.
    std::vector<std::string> w = Words(inst.original);
    if (w.size() < 4) return;
    const std::string& as = w[w.size() - 2];
    const std::string& name = w.back();
    if (AsciiLower(as) != "as") return;
    const std::string& from = w[0];
    if ((AllUpper(from) && !AllUpper(as)) || (AllLower(from) && !AllLower(as))) {
      Add("FromAsCasing", inst, "'" + as + "' and '" + from + "' keywords' casing do not match");
    }
    if (!AllLower(name)) Add("StageNameCasing", inst, "stage name '" + name + "' should be lowercase");
  }

  const Dockerfile& df_;
  const CheckConfig& config_;
  std::vector<CheckFinding> findings_;
};

}  // namespace

bool LooksLikeSecretName(std::string_view name) {
  static const std::set<std::string> secret = {"apikey", "auth",  "credential", "credentials", "key",
                                               "password", "pword", "passwd",   "secret",      "token"};
  bool found = false;
  size_t start = 0;
  for (;;) {
    size_t us = name.find('_', start);
    size_t len = us == std::string_view::npos ? std::string_view::npos : us - start;
    std::string word = AsciiLower(name.substr(start, len));
    if (word == "public") return false;
    if (secret.count(word)) found = true;
    if (us == std::string_view::npos) break;
    start = us + 1;
  }
  return found;
}

Result<CheckConfig> ParseCheckDirective(std::string_view value) {
  CheckConfig c;
  size_t start = 0;
  while (start <= value.size()) {
    size_t semi = value.find(';', start);
    std::string_view part = value.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start);
    start = semi == std::string_view::npos ? value.size() + 1 : semi + 1;
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.front()))) part.remove_prefix(1);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.back()))) part.remove_suffix(1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("# check=: \"" + std::string(part) + "\" is not KEY=VALUE");
    }
    std::string key = AsciiLower(part.substr(0, eq));
    std::string_view v = part.substr(eq + 1);
    if (key == "skip") {
      size_t s = 0;
      while (s <= v.size()) {
        size_t comma = v.find(',', s);
        std::string rule(v.substr(s, comma == std::string_view::npos ? std::string_view::npos : comma - s));
        s = comma == std::string_view::npos ? v.size() + 1 : comma + 1;
        if (rule.empty()) continue;
        if (AsciiLower(rule) == "all") {
          c.skip_all = true;
        } else if (KnownRules().count(rule)) {
          c.skip.insert(rule);
        } else {
          std::string known;
          for (const std::string& r : KnownRules()) known += (known.empty() ? "" : ", ") + r;
          return InvalidArgument("# check=: unknown rule \"" + rule + "\" (kiln checks " + known + ")");
        }
      }
    } else if (key == "error") {
      std::string b = AsciiLower(v);
      if (b != "true" && b != "false") {
        return InvalidArgument("# check=: error must be true or false, not \"" + std::string(v) + "\"");
      }
      c.error = b == "true";
    } else {
      return InvalidArgument("# check=: unknown key \"" + key + "\" (skip, error)");
    }
  }
  return c;
}

std::vector<CheckFinding> RunChecks(const Dockerfile& df, const CheckConfig& config) {
  return Checker(df, config).Run();
}

}  // namespace kiln::dockerfile
