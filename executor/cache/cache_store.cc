#include "executor/cache/cache_store.h"

#include <nlohmann/json.hpp>

namespace kiln::executor {

std::string StepKeyInputsToJson(const StepKeyInputs& in) {
  nlohmann::json j;
  j["key"] = in.key.ToString();
  j["parent"] = in.parent.ToString();
  j["instruction"] = in.instruction.ToString();
  nlohmann::json vars = nlohmann::json::object();
  for (const auto& [k, d] : in.vars) vars[k] = d.ToString();
  j["vars"] = vars;
  j["platform"] = in.platform;
  if (in.sources) j["sources"] = in.sources->ToString();
  return j.dump();
}

Result<StepKeyInputs> StepKeyInputsFromJson(std::string_view json) {
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    StepKeyInputs in;
    auto digest = [&](const char* field) -> Result<Digest> { return Digest::Parse(j.at(field).get<std::string>()); };
    KILN_ASSIGN_OR_RETURN(in.key, digest("key"));
    KILN_ASSIGN_OR_RETURN(in.parent, digest("parent"));
    KILN_ASSIGN_OR_RETURN(in.instruction, digest("instruction"));
    for (const auto& [k, v] : j.at("vars").items()) {
      KILN_ASSIGN_OR_RETURN(Digest d, Digest::Parse(v.get<std::string>()));
      in.vars[k] = d;
    }
    in.platform = j.at("platform").get<std::string>();
    if (j.contains("sources")) {
      KILN_ASSIGN_OR_RETURN(in.sources, digest("sources"));
    }
    return in;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("malformed step inputs record: ") + e.what());
  }
}

Result<int64_t> ParseRfc3339(std::string_view text) {
  auto bad = [&] { return InvalidArgument("invalid RFC 3339 time \"" + std::string(text) + "\""); };
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  if (text.size() < 20) return bad();
  auto num = [&](size_t at, size_t n, int* out) {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  int year, mon, day, hour, min, sec;
  if (!num(0, 4, &year) || text[4] != '-' || !num(5, 2, &mon) || text[7] != '-' || !num(8, 2, &day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !num(11, 2, &hour) || text[13] != ':' ||
      !num(14, 2, &min) || text[16] != ':' || !num(17, 2, &sec)) {
    return bad();
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return bad();
  size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start) return bad();
  }
  int64_t offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int oh, om;
    if (!num(i + 1, 2, &oh) || !num(i + 4, 2, &om)) return bad();
    offset = (oh * 3600 + om * 60) * (text[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return bad();
  }
  if (i != text.size()) return bad();
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return static_cast<int64_t>(::timegm(&tm)) - offset;
}

namespace {

class ReadOnlyCache : public LayerCache {
 public:
  explicit ReadOnlyCache(std::unique_ptr<LayerCache> inner) : inner_(std::move(inner)) {}
  std::string Describe() const override { return inner_->Describe() + ", read only"; }
  Result<std::optional<CacheEntry>> Lookup(const Digest& key) override { return inner_->Lookup(key); }
  Status Store(const Digest&, const CacheEntry&, Reader*) override { return OkStatus(); }
  Result<std::unique_ptr<Reader>> OpenLayer(const CacheEntry& entry) override { return inner_->OpenLayer(entry); }
  std::optional<std::pair<std::string, std::string>> RegistryLocation() const override {
    return inner_->RegistryLocation();
  }
  Result<std::optional<StepKeyInputs>> RecallInputs(const Digest& slot) override { return inner_->RecallInputs(slot); }

 private:
  std::unique_ptr<LayerCache> inner_;
};

}  // namespace

std::unique_ptr<LayerCache> ReadOnlyLayerCache(std::unique_ptr<LayerCache> cache) {
  return std::make_unique<ReadOnlyCache>(std::move(cache));
}

}  // namespace kiln::executor
