#include "executor/steps/metadata.h"

#include <variant>

#include "executor/dockerfile/dockerignore.h"
#include "executor/dockerfile/shell_lex.h"

namespace kiln::executor {
namespace {

// Docker's nat port spec as BuildKit reads EXPOSE: [ip:][hostport:]port[-end][/proto] → one
// "port/proto" per port of the range (numbers normalised, proto lower-cased, tcp by default).
Result<std::vector<std::string>> ExposedPorts(const std::string& spec) {
  std::string container = spec.substr(spec.find_last_of(':') == std::string::npos ? 0 : spec.find_last_of(':') + 1);
  std::string port = container, proto = "tcp";
  if (size_t slash = container.find('/'); slash != std::string::npos) {
    port = container.substr(0, slash);
    proto = container.substr(slash + 1);
    for (char& c : proto) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    if (proto.empty()) proto = "tcp";
  }
  if (proto != "tcp" && proto != "udp" && proto != "sctp") {
    return InvalidArgument("invalid protocol \"" + proto + "\" in EXPOSE " + spec + " (tcp, udp or sctp)");
  }
  auto number = [&](const std::string& text) -> Result<long> {
    if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("invalid port \"" + port + "\" in EXPOSE " + spec + " (a number or a range like 8000-8010)");
    }
    long n = std::stol(text);
    if (n > 65535) return InvalidArgument("port " + text + " in EXPOSE " + spec + " is out of range (0-65535)");
    return n;
  };
  size_t dash = port.find('-');
  KILN_ASSIGN_OR_RETURN(long first, number(port.substr(0, dash)));
  long last = first;
  if (dash != std::string::npos) {
    KILN_ASSIGN_OR_RETURN(last, number(port.substr(dash + 1)));
    if (last < first) return InvalidArgument("invalid port range " + port + " in EXPOSE " + spec);
  }
  std::vector<std::string> out;
  for (long p = first; p <= last; ++p) out.push_back(std::to_string(p) + "/" + proto);
  return out;
}

// moby's signal.ParseSignal, which BuildKit applies to STOPSIGNAL: a positive number, or a Linux
// signal name with or without SIG, in any case (the value is stored as written).
bool IsValidStopSignal(const std::string& raw) {
  if (!raw.empty() && raw.find_first_not_of("0123456789") == std::string::npos) {
    return raw.size() < 10 && std::stol(raw) > 0;
  }
  std::string name = raw;
  for (char& c : name) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  static const std::set<std::string> kNames = {
      "ABRT", "ALRM", "BUS",  "CHLD", "CLD",  "CONT", "FPE",    "HUP",   "ILL",  "INT",  "IO",   "IOT",
      "KILL", "PIPE", "POLL", "PROF", "PWR",  "QUIT", "SEGV",   "STKFLT", "STOP", "SYS",  "TERM", "TRAP",
      "TSTP", "TTIN", "TTOU", "URG",  "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX"};
  if (kNames.count(name)) return true;
  for (int i = 1; i <= 15; ++i) {
    if (name == "RTMIN+" + std::to_string(i) || name == "RTMAX-" + std::to_string(i)) return true;
  }
  return false;
}

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
      for (const std::string& w : words) {
        KILN_ASSIGN_OR_RETURN(std::vector<std::string> ports, ExposedPorts(w));
        cfg.exposed_ports.insert(ports.begin(), ports.end());
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
    if (!IsValidStopSignal(cfg.stop_signal)) return InvalidArgument("Invalid signal: " + cfg.stop_signal);
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
