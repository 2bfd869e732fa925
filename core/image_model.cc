#include "core/image_model.h"

#include <sys/utsname.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "core/media_types.h"

namespace kiln {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// ---- Platform ---------------------------------------------------------------------------------

std::string Platform::ToString() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

static void NormalizeArch(Platform& p) {
  if (p.architecture == "x86_64" || p.architecture == "x86-64") p.architecture = "amd64";
  else if (p.architecture == "aarch64") p.architecture = "arm64";
  else if (p.architecture == "armhf") { p.architecture = "arm"; if (p.variant.empty()) p.variant = "v7"; }
  else if (p.architecture == "armel") { p.architecture = "arm"; if (p.variant.empty()) p.variant = "v6"; }
  else if (p.architecture == "i386" || p.architecture == "i686") p.architecture = "386";
  if (p.architecture == "arm64" && p.variant == "8") p.variant = "v8";
  if (p.architecture == "arm" && p.variant.size() == 1) p.variant = "v" + p.variant;
}

Result<Platform> Platform::Parse(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  auto bad = [&](const std::string& why) {
    return InvalidArgument("invalid platform \"" + std::string(text) + "\": " + why);
  };
  if (parts.size() < 2 || parts.size() > 3) return bad("expected OS/ARCH[/VARIANT], e.g. linux/amd64");
  for (auto& part : parts) {
    if (part.empty()) return bad("empty component");
    for (char c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
        return bad("expected OS/ARCH[/VARIANT] made of letters, digits, '_', '-' and '.', e.g. linux/arm64");
      }
    }
    for (char& c : part) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  NormalizeArch(p);
  return p;
}

Platform Platform::Host() {
  Platform p;
  p.os = "linux";
  struct utsname u {};
  ::uname(&u);
  p.architecture = u.machine;
  NormalizeArch(p);
  if (p.architecture == "arm" && p.variant.empty()) {
    std::string m = u.machine;  // armv7l → v7
    if (m.rfind("armv", 0) == 0 && m.size() > 4) p.variant = std::string("v") + m[4];
  }
  return p;
}

bool Platform::Satisfies(const Platform& want) const {
  if (os != want.os || architecture != want.architecture) return false;
  if (want.variant.empty()) return true;
  if (variant == want.variant) return true;
  // arm64 images usually carry no variant; v8 is the only one.
  return architecture == "arm64" && variant.empty() && want.variant == "v8";
}

// ---- Strict JSON reading ------------------------------------------------------------------------

Descriptor RawManifest::ToDescriptor() const {
  Descriptor d;
  d.media_type = media_type;
  d.digest = digest;
  d.size = static_cast<int64_t>(bytes.size());
  return d;
}

Result<Descriptor> SelectPlatform(const Index& index, const Platform& want) {
  std::string available;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    if (d.platform->Satisfies(want)) return d;
    if (d.platform->os != "unknown") available += (available.empty() ? "" : ", ") + d.platform->ToString();
  }
  return NotFound("no image for platform " + want.ToString() + " in the index (available: " +
                  (available.empty() ? "none" : available) + ")");
}

namespace {

// Reads fields of one JSON object with a path for errors ("layers[2].digest").
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string path, std::string doc) : j_(j), path_(std::move(path)), doc_(std::move(doc)) {}

  Status Error(const std::string& field, const std::string& why) const {
    return InvalidArgument("invalid " + doc_ + ": " + Join(field) + ": " + why);
  }
  std::string Join(const std::string& field) const { return path_.empty() ? field : path_ + "." + field; }
  bool Has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& At(const char* key) const { return j_.at(key); }

  Status String(const char* key, std::string* out, bool required = false) const {
    if (!Has(key)) return required ? Error(key, "missing") : OkStatus();
    if (!j_.at(key).is_string()) return Error(key, "must be a string");
    *out = j_.at(key).get<std::string>();
    return OkStatus();
  }
  Status Int(const char* key, int64_t* out, bool required = false) const {
    if (!Has(key)) return required ? Error(key, "missing") : OkStatus();
    const json& v = j_.at(key);
    if (!v.is_number_integer()) return Error(key, "must be an integer");
    *out = v.get<int64_t>();
    return OkStatus();
  }
  Status Bool(const char* key, bool* out) const {
    if (!Has(key)) return OkStatus();
    if (!j_.at(key).is_boolean()) return Error(key, "must be true or false");
    *out = j_.at(key).get<bool>();
    return OkStatus();
  }
  Status Strings(const char* key, std::vector<std::string>* out) const {
    if (!Has(key)) return OkStatus();
    const json& v = j_.at(key);
    if (!v.is_array()) return Error(key, "must be an array of strings");
    out->clear();
    for (const auto& e : v) {
      if (!e.is_string()) return Error(key, "must be an array of strings");
      out->push_back(e.get<std::string>());
    }
    return OkStatus();
  }
  Status StringMap(const char* key, std::map<std::string, std::string>* out) const {
    if (!Has(key)) return OkStatus();
    const json& v = j_.at(key);
    if (!v.is_object()) return Error(key, "must be an object of strings");
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_string()) return Error(std::string(key) + "." + it.key(), "must be a string");
      (*out)[it.key()] = it.value().get<std::string>();
    }
    return OkStatus();
  }
  // Docker's map[string]struct{} sets (ExposedPorts, Volumes).
  Status KeySet(const char* key, std::set<std::string>* out) const {
    if (!Has(key)) return OkStatus();
    const json& v = j_.at(key);
    if (!v.is_object()) return Error(key, "must be an object");
    for (auto it = v.begin(); it != v.end(); ++it) out->insert(it.key());
    return OkStatus();
  }
  Status DigestField(const char* key, Digest* out) const {
    std::string s;
    KILN_RETURN_IF_ERROR(String(key, &s, true));
    auto d = Digest::Parse(s);
    if (!d.ok()) return Error(key, d.status().message());
    *out = *d;
    return OkStatus();
  }
  Status Object(const char* key) const {
    if (Has(key) && !j_.at(key).is_object()) return Error(key, "must be an object");
    return OkStatus();
  }
  Status Array(const char* key, bool required) const {
    if (!Has(key)) return required ? Error(key, "missing") : OkStatus();
    if (!j_.at(key).is_array()) return Error(key, "must be an array");
    return OkStatus();
  }
  const std::string& path() const { return path_; }
  const std::string& doc() const { return doc_; }

 private:
  const json& j_;
  std::string path_, doc_;
};

Result<json> ParseJson(std::string_view text, const std::string& doc) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("invalid " + doc + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument("invalid " + doc + ": expected a JSON object");
  return j;
}

Status ReadPlatform(const ObjectReader& r, Platform* p) {
  KILN_RETURN_IF_ERROR(r.String("os", &p->os, true));
  KILN_RETURN_IF_ERROR(r.String("architecture", &p->architecture, true));
  KILN_RETURN_IF_ERROR(r.String("variant", &p->variant));
  KILN_RETURN_IF_ERROR(r.String("os.version", &p->os_version));
  return r.Strings("os.features", &p->os_features);
}

enum class DescKind { kLayer, kConfig, kChild, kAny };

Status ReadDescriptor(const json& j, const std::string& path, const std::string& doc, DescKind kind,
                      Descriptor* d) {
  if (!j.is_object()) return InvalidArgument("invalid " + doc + ": " + path + ": must be an object");
  ObjectReader r(j, path, doc);
  KILN_RETURN_IF_ERROR(r.String("mediaType", &d->media_type, true));
  KILN_RETURN_IF_ERROR(r.DigestField("digest", &d->digest));
  KILN_RETURN_IF_ERROR(r.Int("size", &d->size, true));
  if (d->size < 0) return r.Error("size", "must not be negative");
  KILN_RETURN_IF_ERROR(r.Strings("urls", &d->urls));
  KILN_RETURN_IF_ERROR(r.StringMap("annotations", &d->annotations));
  KILN_RETURN_IF_ERROR(r.String("artifactType", &d->artifact_type));
  if (r.Has("platform")) {
    KILN_RETURN_IF_ERROR(r.Object("platform"));
    ObjectReader pr(r.At("platform"), r.Join("platform"), doc);
    Platform p;
    KILN_RETURN_IF_ERROR(ReadPlatform(pr, &p));
    d->platform = p;
  }
  const std::string& mt = d->media_type;
  switch (kind) {
    case DescKind::kLayer:
      if (!media_type::IsLayer(mt)) return r.Error("mediaType", "unknown layer media type \"" + mt + "\"");
      break;
    case DescKind::kConfig:
      // OCI artifacts carry arbitrary config types; an image must have an image config.
      if (!media_type::IsConfig(mt) && mt != media_type::kOciEmpty && !mt.ends_with("+json")) {
        return r.Error("mediaType", "unknown config media type \"" + mt + "\"");
      }
      break;
    case DescKind::kChild:
      if (media_type::IsSchema1(mt)) return r.Error("mediaType", "Docker schema 1 manifests are not supported");
      break;
    case DescKind::kAny:
      break;
  }
  return OkStatus();
}

Status ReadDescriptorList(const ObjectReader& r, const char* key, DescKind kind, bool required,
                          std::vector<Descriptor>* out) {
  KILN_RETURN_IF_ERROR(r.Array(key, required));
  if (!r.Has(key)) return OkStatus();
  const json& arr = r.At(key);
  for (size_t i = 0; i < arr.size(); ++i) {
    Descriptor d;
    KILN_RETURN_IF_ERROR(ReadDescriptor(arr[i], r.Join(key) + "[" + std::to_string(i) + "]", r.doc(), kind, &d));
    out->push_back(std::move(d));
  }
  return OkStatus();
}

Status CheckSchemaVersion(const ObjectReader& r) {
  int64_t v = 0;
  KILN_RETURN_IF_ERROR(r.Int("schemaVersion", &v, true));
  if (v == 1) return Unsupported("invalid " + r.doc() + ": Docker schema 1 manifests are not supported; "
                                 "re-push the image with a current Docker, skopeo or kiln");
  if (v != 2) return r.Error("schemaVersion", "must be 2, got " + std::to_string(v));
  return OkStatus();
}

// ---- Canonical JSON writing ---------------------------------------------------------------------

void PutIfNotEmpty(ojson& o, const char* key, const std::string& v) {
  if (!v.empty()) o[key] = v;
}

ojson StringMapJson(const std::map<std::string, std::string>& m) {
  ojson o = ojson::object();
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

ojson PlatformJson(const Platform& p) {
  ojson o;
  o["architecture"] = p.architecture;
  o["os"] = p.os;
  PutIfNotEmpty(o, "os.version", p.os_version);
  if (!p.os_features.empty()) o["os.features"] = p.os_features;
  PutIfNotEmpty(o, "variant", p.variant);
  return o;
}

ojson DescriptorJson(const Descriptor& d) {
  ojson o;
  o["mediaType"] = d.media_type;
  o["digest"] = d.digest.ToString();
  o["size"] = d.size;
  if (!d.urls.empty()) o["urls"] = d.urls;
  if (!d.annotations.empty()) o["annotations"] = StringMapJson(d.annotations);
  if (d.platform) o["platform"] = PlatformJson(*d.platform);
  PutIfNotEmpty(o, "artifactType", d.artifact_type);
  return o;
}

ojson KeySetJson(const std::set<std::string>& s) {
  ojson o = ojson::object();
  for (const auto& k : s) o[k] = ojson::object();
  return o;
}

}  // namespace

bool Manifest::is_docker() const { return media_type == media_type::kDockerManifest; }

Platform ImageConfig::platform() const {
  Platform p;
  p.os = os;
  p.architecture = architecture;
  p.variant = variant;
  p.os_version = os_version;
  p.os_features = os_features;
  return p;
}

Result<ManifestKind> DetectManifestKind(std::string_view text, std::string_view content_type) {
  std::string_view ct = content_type.substr(0, content_type.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  if (media_type::IsSchema1(ct)) {
    return Unsupported("Docker schema 1 manifests are not supported; re-push the image with a current Docker, "
                       "skopeo or kiln");
  }
  KILN_ASSIGN_OR_RETURN(json j, ParseJson(text, "manifest"));
  std::string mt;
  if (j.contains("mediaType") && j["mediaType"].is_string()) mt = j["mediaType"].get<std::string>();
  if (mt.empty()) mt = std::string(ct);
  if (media_type::IsImageManifest(mt)) return ManifestKind::kImageManifest;
  if (media_type::IsIndex(mt)) return ManifestKind::kIndex;
  if (media_type::IsSchema1(mt) || (j.contains("schemaVersion") && j["schemaVersion"] == 1)) {
    return Unsupported("Docker schema 1 manifests are not supported; re-push the image with a current Docker, "
                       "skopeo or kiln");
  }
  // OCI allows omitting mediaType; fall back to the document's shape.
  if (mt.empty() || mt == "application/json") {
    if (j.contains("manifests")) return ManifestKind::kIndex;
    if (j.contains("config")) return ManifestKind::kImageManifest;
  }
  return Unsupported("unsupported manifest media type \"" + mt + "\"");
}

Result<Manifest> ParseManifest(std::string_view text) {
  const std::string doc = "image manifest";
  KILN_ASSIGN_OR_RETURN(json j, ParseJson(text, doc));
  ObjectReader r(j, "", doc);
  Manifest m;
  KILN_RETURN_IF_ERROR(CheckSchemaVersion(r));
  KILN_RETURN_IF_ERROR(r.String("mediaType", &m.media_type));
  if (!m.media_type.empty() && !media_type::IsImageManifest(m.media_type)) {
    return r.Error("mediaType", "\"" + m.media_type + "\" is not an image manifest media type");
  }
  if (m.media_type.empty() && r.Has("manifests")) return r.Error("manifests", "this is an index, not a manifest");
  KILN_RETURN_IF_ERROR(r.String("artifactType", &m.artifact_type));
  if (!r.Has("config")) return r.Error("config", "missing");
  KILN_RETURN_IF_ERROR(ReadDescriptor(r.At("config"), "config", doc, DescKind::kConfig, &m.config));
  // Artifacts (non-image configs) may carry any blob type as a layer.
  DescKind layer_kind = media_type::IsConfig(m.config.media_type) ? DescKind::kLayer : DescKind::kAny;
  KILN_RETURN_IF_ERROR(ReadDescriptorList(r, "layers", layer_kind, /*required=*/true, &m.layers));
  if (r.Has("subject")) {
    Descriptor s;
    KILN_RETURN_IF_ERROR(ReadDescriptor(r.At("subject"), "subject", doc, DescKind::kAny, &s));
    m.subject = s;
  }
  KILN_RETURN_IF_ERROR(r.StringMap("annotations", &m.annotations));
  return m;
}

Result<Index> ParseIndex(std::string_view text) {
  const std::string doc = "image index";
  KILN_ASSIGN_OR_RETURN(json j, ParseJson(text, doc));
  ObjectReader r(j, "", doc);
  Index idx;
  KILN_RETURN_IF_ERROR(CheckSchemaVersion(r));
  KILN_RETURN_IF_ERROR(r.String("mediaType", &idx.media_type));
  if (!idx.media_type.empty() && !media_type::IsIndex(idx.media_type)) {
    return r.Error("mediaType", "\"" + idx.media_type + "\" is not an index media type");
  }
  KILN_RETURN_IF_ERROR(r.String("artifactType", &idx.artifact_type));
  KILN_RETURN_IF_ERROR(ReadDescriptorList(r, "manifests", DescKind::kChild, /*required=*/true, &idx.manifests));
  if (r.Has("subject")) {
    Descriptor s;
    KILN_RETURN_IF_ERROR(ReadDescriptor(r.At("subject"), "subject", doc, DescKind::kAny, &s));
    idx.subject = s;
  }
  KILN_RETURN_IF_ERROR(r.StringMap("annotations", &idx.annotations));
  return idx;
}

Result<ImageConfig> ParseImageConfig(std::string_view text) {
  const std::string doc = "image config";
  KILN_ASSIGN_OR_RETURN(json j, ParseJson(text, doc));
  ObjectReader r(j, "", doc);
  ImageConfig c;
  KILN_RETURN_IF_ERROR(r.String("created", &c.created));
  KILN_RETURN_IF_ERROR(r.String("author", &c.author));
  KILN_RETURN_IF_ERROR(r.String("architecture", &c.architecture, true));
  KILN_RETURN_IF_ERROR(r.String("os", &c.os, true));
  KILN_RETURN_IF_ERROR(r.String("os.version", &c.os_version));
  KILN_RETURN_IF_ERROR(r.Strings("os.features", &c.os_features));
  KILN_RETURN_IF_ERROR(r.String("variant", &c.variant));

  KILN_RETURN_IF_ERROR(r.Object("config"));
  if (r.Has("config")) {
    ObjectReader cr(r.At("config"), "config", doc);
    ContainerConfig& cc = c.config;
    KILN_RETURN_IF_ERROR(cr.String("User", &cc.user));
    KILN_RETURN_IF_ERROR(cr.KeySet("ExposedPorts", &cc.exposed_ports));
    KILN_RETURN_IF_ERROR(cr.Strings("Env", &cc.env));
    if (cr.Has("Entrypoint")) {
      std::vector<std::string> v;
      KILN_RETURN_IF_ERROR(cr.Strings("Entrypoint", &v));
      cc.entrypoint = v;
    }
    if (cr.Has("Cmd")) {
      std::vector<std::string> v;
      KILN_RETURN_IF_ERROR(cr.Strings("Cmd", &v));
      cc.cmd = v;
    }
    KILN_RETURN_IF_ERROR(cr.KeySet("Volumes", &cc.volumes));
    KILN_RETURN_IF_ERROR(cr.String("WorkingDir", &cc.working_dir));
    KILN_RETURN_IF_ERROR(cr.StringMap("Labels", &cc.labels));
    KILN_RETURN_IF_ERROR(cr.String("StopSignal", &cc.stop_signal));
    KILN_RETURN_IF_ERROR(cr.Bool("ArgsEscaped", &cc.args_escaped));
    KILN_RETURN_IF_ERROR(cr.Strings("OnBuild", &cc.on_build));
    KILN_RETURN_IF_ERROR(cr.Strings("Shell", &cc.shell));
    KILN_RETURN_IF_ERROR(cr.Object("Healthcheck"));
    if (cr.Has("Healthcheck")) {
      ObjectReader hr(cr.At("Healthcheck"), "config.Healthcheck", doc);
      HealthConfig h;
      int64_t retries = 0;
      KILN_RETURN_IF_ERROR(hr.Strings("Test", &h.test));
      KILN_RETURN_IF_ERROR(hr.Int("Interval", &h.interval));
      KILN_RETURN_IF_ERROR(hr.Int("Timeout", &h.timeout));
      KILN_RETURN_IF_ERROR(hr.Int("StartPeriod", &h.start_period));
      KILN_RETURN_IF_ERROR(hr.Int("StartInterval", &h.start_interval));
      KILN_RETURN_IF_ERROR(hr.Int("Retries", &retries));
      h.retries = static_cast<int>(retries);
      cc.healthcheck = h;
    }
  }

  if (!r.Has("rootfs")) return r.Error("rootfs", "missing");
  KILN_RETURN_IF_ERROR(r.Object("rootfs"));
  ObjectReader rr(r.At("rootfs"), "rootfs", doc);
  std::string type;
  KILN_RETURN_IF_ERROR(rr.String("type", &type, true));
  if (type != "layers") return rr.Error("type", "must be \"layers\", got \"" + type + "\"");
  std::vector<std::string> ids;
  KILN_RETURN_IF_ERROR(rr.Array("diff_ids", true));
  KILN_RETURN_IF_ERROR(rr.Strings("diff_ids", &ids));
  for (size_t i = 0; i < ids.size(); ++i) {
    auto d = Digest::Parse(ids[i]);
    if (!d.ok()) return rr.Error("diff_ids[" + std::to_string(i) + "]", d.status().message());
    c.diff_ids.push_back(*d);
  }

  KILN_RETURN_IF_ERROR(r.Array("history", false));
  if (r.Has("history")) {
    const json& hs = r.At("history");
    for (size_t i = 0; i < hs.size(); ++i) {
      std::string path = "history[" + std::to_string(i) + "]";
      if (!hs[i].is_object()) return r.Error(path, "must be an object");
      ObjectReader hr(hs[i], path, doc);
      History h;
      KILN_RETURN_IF_ERROR(hr.String("created", &h.created));
      KILN_RETURN_IF_ERROR(hr.String("created_by", &h.created_by));
      KILN_RETURN_IF_ERROR(hr.String("author", &h.author));
      KILN_RETURN_IF_ERROR(hr.String("comment", &h.comment));
      KILN_RETURN_IF_ERROR(hr.Bool("empty_layer", &h.empty_layer));
      c.history.push_back(std::move(h));
    }
    size_t non_empty = 0;
    for (const auto& h : c.history) non_empty += h.empty_layer ? 0 : 1;
    // Docker writes history for every layer; when history is present it must agree with diff_ids.
    if (!c.history.empty() && non_empty != c.diff_ids.size()) {
      return r.Error("history", std::to_string(non_empty) + " non-empty entries but rootfs has " +
                                    std::to_string(c.diff_ids.size()) + " diff_ids");
    }
  }
  return c;
}

std::string SerializeManifest(const Manifest& m) {
  ojson o;
  o["schemaVersion"] = m.schema_version;
  PutIfNotEmpty(o, "mediaType", m.media_type);
  PutIfNotEmpty(o, "artifactType", m.artifact_type);
  o["config"] = DescriptorJson(m.config);
  o["layers"] = ojson::array();
  for (const auto& l : m.layers) o["layers"].push_back(DescriptorJson(l));
  if (m.subject) o["subject"] = DescriptorJson(*m.subject);
  if (!m.annotations.empty()) o["annotations"] = StringMapJson(m.annotations);
  return o.dump();
}

std::string SerializeIndex(const Index& idx) {
  ojson o;
  o["schemaVersion"] = idx.schema_version;
  PutIfNotEmpty(o, "mediaType", idx.media_type);
  PutIfNotEmpty(o, "artifactType", idx.artifact_type);
  o["manifests"] = ojson::array();
  for (const auto& d : idx.manifests) o["manifests"].push_back(DescriptorJson(d));
  if (idx.subject) o["subject"] = DescriptorJson(*idx.subject);
  if (!idx.annotations.empty()) o["annotations"] = StringMapJson(idx.annotations);
  return o.dump();
}

std::string SerializeImageConfig(const ImageConfig& c) {
  ojson o;
  PutIfNotEmpty(o, "created", c.created);
  PutIfNotEmpty(o, "author", c.author);
  o["architecture"] = c.architecture;
  o["os"] = c.os;
  PutIfNotEmpty(o, "os.version", c.os_version);
  if (!c.os_features.empty()) o["os.features"] = c.os_features;
  PutIfNotEmpty(o, "variant", c.variant);

  const ContainerConfig& cc = c.config;
  ojson co = ojson::object();
  PutIfNotEmpty(co, "User", cc.user);
  if (!cc.exposed_ports.empty()) co["ExposedPorts"] = KeySetJson(cc.exposed_ports);
  if (!cc.env.empty()) co["Env"] = cc.env;
  if (cc.entrypoint) co["Entrypoint"] = *cc.entrypoint;
  if (cc.cmd) co["Cmd"] = *cc.cmd;
  if (cc.healthcheck) {
    const HealthConfig& h = *cc.healthcheck;
    ojson ho;
    ho["Test"] = h.test;
    if (h.interval) ho["Interval"] = h.interval;
    if (h.timeout) ho["Timeout"] = h.timeout;
    if (h.start_period) ho["StartPeriod"] = h.start_period;
    if (h.start_interval) ho["StartInterval"] = h.start_interval;
    if (h.retries) ho["Retries"] = h.retries;
    co["Healthcheck"] = ho;
  }
  if (cc.args_escaped) co["ArgsEscaped"] = true;
  if (!cc.volumes.empty()) co["Volumes"] = KeySetJson(cc.volumes);
  PutIfNotEmpty(co, "WorkingDir", cc.working_dir);
  if (!cc.labels.empty()) co["Labels"] = StringMapJson(cc.labels);
  if (!cc.on_build.empty()) co["OnBuild"] = cc.on_build;
  PutIfNotEmpty(co, "StopSignal", cc.stop_signal);
  if (!cc.shell.empty()) co["Shell"] = cc.shell;
  o["config"] = co;

  ojson rootfs;
  rootfs["type"] = "layers";
  rootfs["diff_ids"] = ojson::array();
  for (const auto& d : c.diff_ids) rootfs["diff_ids"].push_back(d.ToString());
  o["rootfs"] = rootfs;

  if (!c.history.empty()) {
    ojson hs = ojson::array();
    for (const auto& h : c.history) {
      ojson ho = ojson::object();  // an entry with every field empty is {}, not null
      PutIfNotEmpty(ho, "created", h.created);
      PutIfNotEmpty(ho, "created_by", h.created_by);
      PutIfNotEmpty(ho, "author", h.author);
      PutIfNotEmpty(ho, "comment", h.comment);
      if (h.empty_layer) ho["empty_layer"] = true;
      hs.push_back(ho);
    }
    o["history"] = hs;
  }
  return o.dump();
}

std::string FormatRfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace kiln
