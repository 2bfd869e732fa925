#include "executor/steps/metadata.h"

#include <variant>

#include "executor/dockerfile/dockerignore.h"
#include "executor/dockerfile/shell_lex.h"

namespace kiln::executor {
namespace {

using namespace kiln::dockerfile;

std::vector<std::string> CommandArgv(const CommandLine& cmd, const std::vector<std::string>& shell) {
  if (cmd.exec_form) return cmd.args;
  std::vector<std::string> argv = shell;
  if (!cmd.args.empty()) argv.push_back(cmd.args[0]);  // a bare `CMD` is just the shell, as in BuildKit
  return argv;
}

}  // namespace

void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (std::string& e : env) {
    size_t eq = e.find('=');
    if (e.compare(0, eq, key) == 0 && (eq == key.size() || (eq == std::string::npos && e.size() == key.size()))) {
      e = key + "=" + value;
      return;
    }
  }
  env.push_back(key + "=" + value);
}

std::optional<std::string> FindEnv(const std::vector<std::string>& env, const std::string& key) {
  for (const std::string& e : env) {
    size_t eq = e.find('=');
    if (eq == key.size() && e.compare(0, eq, key) == 0) return e.substr(eq + 1);
  }
  return std::nullopt;
}

std::string WorkdirAsConfigured(const std::string& current, const std::string& path) {
  // BuildKit's NormalizeWorkdir (Buildah and Kaniko agree): an absolute path is kept as written
  // ("/app/" stays "/app/"); a relative one is joined to the current directory and cleaned.
  if (!path.empty() && path[0] == '/') return path;
  return ResolveWorkdir(current, path);
}

std::string ResolveWorkdir(const std::string& current, const std::string& path) {
  std::string joined = path;
  if (joined.empty() || joined[0] != '/') joined = (current.empty() ? std::string("/") : current) + "/" + path;
  std::string clean = CleanPath(joined);
  if (clean.empty() || clean == ".") return "/";
  if (clean[0] != '/') clean = "/" + clean;
  return clean;
}

Result<bool> ApplyMetadata(const Instruction& inst, char escape, StageMetadata& st) {
  ContainerConfig& cfg = st.image->config;
  auto expand = [&](const std::string& w) { return ExpandWord(w, st.scope->ExpansionVars(), escape); };
  st.created_by.clear();

  if (const auto* env = std::get_if<EnvInst>(&inst.cmd)) {
    // Keys are expanded with the variables before the instruction, as ApplyEnv does.
    Vars before = st.scope->ExpansionVars();
    std::vector<std::string> keys;
    for (const KeyValue& kv : env->vars) {
      KILN_ASSIGN_OR_RETURN(std::string k, ExpandWord(kv.key, before, escape));
      keys.push_back(k);
    }
    KILN_RETURN_IF_ERROR(st.scope->ApplyEnv(*env, escape));
    st.created_by = "ENV";
    for (const std::string& k : keys) {
      auto it = st.scope->env().find(k);
      if (it == st.scope->env().end()) continue;
      SetEnv(cfg.env, k, it->second);
      st.created_by += " " + k + "=" + it->second;
    }
    return true;
  }
  if (const auto* arg = std::get_if<ArgInst>(&inst.cmd)) {
    KILN_RETURN_IF_ERROR(st.scope->ApplyArg(*arg, escape));
    return true;
  }
  if (const auto* label = std::get_if<LabelInst>(&inst.cmd)) {
    st.created_by = "LABEL";
    for (const KeyValue& kv : label->labels) {
      KILN_ASSIGN_OR_RETURN(std::string k, expand(kv.key));
      KILN_ASSIGN_OR_RETURN(std::string v, expand(kv.value));
      cfg.labels[k] = v;
      st.created_by += " " + k + "=" + v;
    }
    return true;
  }
  if (const auto* m = std::get_if<MaintainerInst>(&inst.cmd)) {
    st.image->author = m->name;
    return true;
  }
  if (const auto* expose = std::get_if<ExposeInst>(&inst.cmd)) {
    for (const std::string& p : expose->ports) {
      KILN_ASSIGN_OR_RETURN(std::vector<std::string> words, ExpandWords(p, st.scope->ExpansionVars(), escape));
      for (std::string w : words) {
        for (char& c : w) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
        std::string port = w, proto = "tcp";
        size_t slash = w.find('/');
        if (slash != std::string::npos) port = w.substr(0, slash), proto = w.substr(slash + 1);
        if (proto != "tcp" && proto != "udp" && proto != "sctp") {
          return InvalidArgument("invalid protocol \"" + proto + "\" in EXPOSE " + w + " (tcp, udp or sctp)");
        }
        bool digits = !port.empty();
        size_t dash = port.find('-');
        for (size_t i = 0; i < port.size(); ++i) {
          if (!isdigit(static_cast<unsigned char>(port[i])) && !(i == dash && i > 0 && i + 1 < port.size())) digits = false;
        }
        if (!digits) return InvalidArgument("invalid port \"" + port + "\" in EXPOSE (a number or a range like 8000-8010)");
        cfg.exposed_ports.insert(port + "/" + proto);
      }
    }
    return true;
  }
  if (const auto* cmd = std::get_if<CmdInst>(&inst.cmd)) {
    cfg.cmd = CommandArgv(cmd->cmd, st.shell);
    st.cmd_set = true;
    return true;
  }
  if (const auto* ep = std::get_if<EntrypointInst>(&inst.cmd)) {
    if (!ep->cmd.exec_form && (ep->cmd.args.empty() || ep->cmd.args[0].empty())) {
      cfg.entrypoint = std::vector<std::string>{};
    } else {
      cfg.entrypoint = CommandArgv(ep->cmd, st.shell);
    }
    if (!st.cmd_set) cfg.cmd.reset();  // an inherited CMD makes no sense with a new ENTRYPOINT
    return true;
  }
  if (const auto* vol = std::get_if<VolumeInst>(&inst.cmd)) {
    for (const std::string& p : vol->paths) {
      KILN_ASSIGN_OR_RETURN(std::string v, expand(p));
      if (v.empty()) return InvalidArgument("VOLUME specified can not be an empty string");
      cfg.volumes.insert(v);
    }
    return true;
  }
  if (const auto* user = std::get_if<UserInst>(&inst.cmd)) {
    KILN_ASSIGN_OR_RETURN(cfg.user, expand(user->user));
    return true;
  }
  if (const auto* sh = std::get_if<ShellInst>(&inst.cmd)) {
    st.shell = sh->shell;
    cfg.shell = sh->shell;
    return true;
  }
  if (const auto* sig = std::get_if<StopSignalInst>(&inst.cmd)) {
    KILN_ASSIGN_OR_RETURN(cfg.stop_signal, expand(sig->signal));
    return true;
  }
  if (const auto* hc = std::get_if<HealthcheckInst>(&inst.cmd)) {
    HealthConfig h;
    h.test = hc->test;
    if (h.test.size() == 2 && h.test[0] == "CMD-SHELL" && st.shell != std::vector<std::string>{"/bin/sh", "-c"}) {
      // BuildKit keeps CMD-SHELL; the runtime uses the image's Shell. Nothing to rewrite.
    }
    h.interval = hc->interval_ns;
    h.timeout = hc->timeout_ns;
    h.start_period = hc->start_period_ns;
    h.start_interval = hc->start_interval_ns;
    h.retries = hc->retries;
    cfg.healthcheck = h;
    return true;
  }
  if (const auto* ob = std::get_if<OnbuildInst>(&inst.cmd)) {
    cfg.on_build.push_back(ob->expression);
    return true;
  }
  return false;
}

}  // namespace kiln::executor
