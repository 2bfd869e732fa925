#include "executor/image/provenance.h"

#include <nlohmann/json.hpp>

#include "executor/dockerfile/checks.h"

namespace kiln::executor {

// kiln has no web home to resolve a URL against; a URN names the build type without pretending one.
const char kKilnBuildType[] = "urn:kiln:buildtype:dockerfile:v1";

std::string RecordedBuildArg(const std::string& name, const std::string& value) {
  return dockerfile::LooksLikeSecretName(name) ? "[REDACTED]" : value;
}

std::string ProvenanceDocument(const ProvenanceInputs& in) {
  using nlohmann::ordered_json;
  ordered_json statement;
  statement["_type"] = "https://in-toto.io/Statement/v1";
  statement["subject"] = {{{"name", in.subject_name.empty() ? "image" : in.subject_name},
                           {"digest", {{in.subject.algorithm(), in.subject.hex()}}}}};
  statement["predicateType"] = "https://slsa.dev/provenance/v1";

  ordered_json external;
  external["dockerfile"] = {{"path", in.dockerfile_path},
                            {"digest", {{in.dockerfile_digest.algorithm(), in.dockerfile_digest.hex()}}}};
  external["target"] = in.target;
  external["platforms"] = in.platforms;
  ordered_json args = ordered_json::object();
  for (const auto& [name, value] : in.build_args) args[name] = RecordedBuildArg(name, value);
  external["buildArgs"] = std::move(args);

  ordered_json deps = ordered_json::array();
  for (const ResolvedBase& b : in.bases) {
    deps.push_back({{"uri", "docker://" + b.canonical},
                    {"digest", {{b.digest.algorithm(), b.digest.hex()}}},
                    {"annotations", {{"from", b.reference}}}});
  }
  ordered_json definition;
  definition["buildType"] = kKilnBuildType;
  definition["externalParameters"] = std::move(external);
  definition["internalParameters"] = ordered_json::object();
  definition["resolvedDependencies"] = std::move(deps);

  ordered_json run;
  run["builder"] = {{"id", "urn:kiln:builder:kiln-" + in.builder_version},
                    {"version", {{"kiln", in.builder_version}}}};
  run["metadata"] = ordered_json::object();

  statement["predicate"] = {{"buildDefinition", std::move(definition)}, {"runDetails", std::move(run)}};
  return statement.dump(2) + "\n";
}

}  // namespace kiln::executor
