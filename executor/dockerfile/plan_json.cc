// PlanToJson: what kiln understood, for people (kiln plan). Field order is fixed.
#include <nlohmann/json.hpp>

#include "executor/dockerfile/plan.h"

namespace kiln::dockerfile {
namespace {

using Json = nlohmann::ordered_json;

Json CommandJson(const CommandLine& c) {
  Json j;
  j["form"] = c.exec_form ? "exec" : "shell";
  j["args"] = c.args;
  if (!c.heredocs.empty()) {
    Json docs = Json::array();
    for (const Heredoc& h : c.heredocs) docs.push_back({{"name", h.name}, {"fd", h.fd}, {"expand", h.expand}, {"chomp", h.chomp}, {"content", h.content}});
    j["heredocs"] = docs;
  }
  return j;
}

Json KvJson(const std::vector<KeyValue>& kvs) {
  Json a = Json::array();
  for (const KeyValue& kv : kvs) a.push_back({{"key", kv.key}, {"value", kv.value}});
  return a;
}

void CopyCommonJson(const CopyCommon& c, Json* j) {
  (*j)["sources"] = c.sources;
  if (!c.inline_sources.empty()) {
    Json a = Json::array();
    for (const InlineSource& s : c.inline_sources) a.push_back({{"path", s.path}, {"expand", s.expand}, {"data", s.data}});
    (*j)["inline_sources"] = a;
  }
  (*j)["dest"] = c.dest;
  if (!c.chown.empty()) (*j)["chown"] = c.chown;
  if (!c.chmod.empty()) (*j)["chmod"] = c.chmod;
  if (c.link) (*j)["link"] = true;
  if (!c.excludes.empty()) (*j)["exclude"] = c.excludes;
}

struct Details {
  Json operator()(const FromInst& f) const { return {{"image", f.image}, {"as", f.stage_name}, {"platform", f.platform}}; }
  Json operator()(const RunInst& r) const {
    Json j = CommandJson(r.cmd);
    if (!r.mounts.empty()) {
      Json m = Json::array();
      for (const MountSpec& s : r.mounts) m.push_back(s.raw);
      j["mounts"] = m;
    }
    if (!r.network.empty()) j["network"] = r.network;
    if (!r.security.empty()) j["security"] = r.security;
    return j;
  }
  Json operator()(const CmdInst& c) const { return CommandJson(c.cmd); }
  Json operator()(const EntrypointInst& c) const { return CommandJson(c.cmd); }
  Json operator()(const ShellInst& s) const { return {{"shell", s.shell}}; }
  Json operator()(const LabelInst& l) const { return {{"labels", KvJson(l.labels)}}; }
  Json operator()(const MaintainerInst& m) const { return {{"maintainer", m.name}}; }
  Json operator()(const ExposeInst& e) const { return {{"ports", e.ports}}; }
  Json operator()(const EnvInst& e) const { return {{"env", KvJson(e.vars)}}; }
  Json operator()(const CopyInst& c) const {
    Json j;
    if (!c.from.empty()) j["from"] = c.from;
    CopyCommonJson(c, &j);
    if (c.parents) j["parents"] = true;
    return j;
  }
  Json operator()(const AddInst& a) const {
    Json j;
    CopyCommonJson(a, &j);
    if (!a.checksum.empty()) j["checksum"] = a.checksum;
    if (a.keep_git_dir) j["keep_git_dir"] = true;
    if (a.unpack) j["unpack"] = *a.unpack;
    return j;
  }
  Json operator()(const VolumeInst& v) const { return {{"paths", v.paths}}; }
  Json operator()(const UserInst& u) const { return {{"user", u.user}}; }
  Json operator()(const WorkdirInst& w) const { return {{"path", w.path}}; }
  Json operator()(const ArgInst& a) const {
    Json arr = Json::array();
    for (const ArgDecl& d : a.args) {
      Json o{{"name", d.key}};
      o["default"] = d.value ? Json(*d.value) : Json(nullptr);
      arr.push_back(o);
    }
    return {{"args", arr}};
  }
  Json operator()(const OnbuildInst& o) const { return {{"trigger", o.expression}}; }
  Json operator()(const StopSignalInst& s) const { return {{"signal", s.signal}}; }
  Json operator()(const HealthcheckInst& h) const {
    return {{"test", h.test},
            {"interval_ns", h.interval_ns},
            {"timeout_ns", h.timeout_ns},
            {"start_period_ns", h.start_period_ns},
            {"start_interval_ns", h.start_interval_ns},
            {"retries", h.retries}};
  }
};

Json RefJson(const SourceRef& r) {
  switch (r.kind) {
    case SourceRef::Kind::kScratch: return {{"kind", "scratch"}};
    case SourceRef::Kind::kImage: return {{"kind", "image"}, {"image", r.image}};
    case SourceRef::Kind::kStage: return {{"kind", "stage"}, {"stage", r.stage}};
    case SourceRef::Kind::kContext: return {{"kind", "context"}, {"context", r.image}};
  }
  return {};
}

}  // namespace

std::string InstructionDetailsJson(const Instruction& inst) {
  return std::visit(Details{}, inst.cmd).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string PlanToJson(const Plan& plan) {
  Json j;
  j["escape"] = std::string(1, plan.escape);
  if (!plan.syntax.empty()) j["syntax"] = plan.syntax;
  if (!plan.check.empty()) j["check"] = plan.check;
  j["target"] = plan.target;
  Json globals = Json::object();
  for (const auto& [k, v] : plan.global_args.values) globals[k] = v;
  j["global_args"] = globals;
  Json stages = Json::array();
  for (const PlannedStage& s : plan.stages) {
    Json st;
    st["index"] = s.index;
    st["name"] = s.name;
    st["line"] = s.loc.line;
    st["from"] = s.original;
    st["base"] = RefJson(s.base);
    st["platform"] = s.platform.ToString();
    st["onbuild_pending"] = s.onbuild_pending;
    if (s.replaced_by_context) st["replaced_by_context"] = true;
    st["depends_on"] = s.depends_on;
    Json insts = Json::array();
    for (size_t k = 0; k < s.instructions.size(); ++k) {
      const Instruction& in = s.instructions[k];
      Json ij;
      ij["line"] = in.loc.line;
      ij["keyword"] = in.keyword;
      ij["original"] = in.original;
      if (in.from_onbuild) ij["from_onbuild"] = true;
      ij["details"] = std::visit(Details{}, in.cmd);
      for (const FromRef& r : s.from_refs) {
        if (r.instruction == k) ij["from_ref"] = RefJson(r.ref);
      }
      insts.push_back(ij);
    }
    st["instructions"] = insts;
    stages.push_back(st);
  }
  j["stages"] = stages;
  j["unused_build_args"] = plan.unused_build_args;
  j["warnings"] = plan.warnings;
  // Dockerfiles are not required to be UTF-8; invalid bytes become U+FFFD instead of throwing
  // (found by the fuzzer).
  return j.dump(2, ' ', false, Json::error_handler_t::replace);
}

}  // namespace kiln::dockerfile
