// Dockerfile FROM lines, docker-pkg's template subset, changelogs, version bumps.
#include "executor/tree/tree_text.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "core/io.h"

namespace kiln::tree {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// One FROM instruction on one line: where its image word sits.
struct FromLine {
  size_t ref_pos = 0;
  std::string ref;
  std::string alias;  // AS NAME, lower-cased
};

std::optional<FromLine> ParseFrom(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  if (!(in >> word) || Lower(word) != "from") return std::nullopt;
  FromLine f;
  size_t pos = line.find_first_not_of(" \t");
  pos += 4;
  while (in >> word) {
    pos = line.find(word, pos);
    if (word.rfind("--", 0) == 0) {
      pos += word.size();
      continue;
    }
    f.ref = word;
    f.ref_pos = pos;
    break;
  }
  if (f.ref.empty()) return std::nullopt;
  std::string as, alias;
  if (in >> as >> alias && Lower(as) == "as") f.alias = Lower(alias);
  return f;
}

// "base:1.0" → "base"; "reg:5000/x@sha256:…" → "reg:5000/x".
std::string NameOf(std::string ref) {
  size_t at = ref.find('@');
  if (at != std::string::npos) ref.resize(at);
  size_t colon = ref.rfind(':');
  size_t slash = ref.rfind('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) ref.resize(colon);
  return ref;
}

// docker-pkg: the parts of a template, literal text and {{ expressions }}.
struct Piece {
  bool expr = false;
  std::string text;
  int line = 1;
};

Result<std::vector<Piece>> SplitTemplate(const TreeImage& img) {
  std::vector<Piece> out;
  const std::string& t = img.text;
  size_t i = 0;
  int line = 1;
  auto where = [&](int l) { return img.definition + ":" + std::to_string(l); };
  while (i < t.size()) {
    size_t open = t.find('{', i);
    while (open != std::string::npos && open + 1 < t.size() && t[open + 1] != '{' && t[open + 1] != '%' &&
           t[open + 1] != '#') {
      open = t.find('{', open + 1);
    }
    if (open == std::string::npos || open + 1 >= t.size()) {
      out.push_back({false, t.substr(i), line});
      break;
    }
    out.push_back({false, t.substr(i, open - i), line});
    line += static_cast<int>(std::count(t.begin() + i, t.begin() + open, '\n'));
    if (t[open + 1] != '{') {
      return InvalidArgument(where(line) + ": Jinja " + t.substr(open, 2) +
                             " blocks are not supported by kiln tree (only {{ registry }} and "
                             "{{ \"NAME\" | image_tag }}; see docs/trees.md)");
    }
    size_t close = t.find("}}", open + 2);
    if (close == std::string::npos) return InvalidArgument(where(line) + ": {{ without a closing }}");
    out.push_back({true, t.substr(open + 2, close - open - 2), line});
    line += static_cast<int>(std::count(t.begin() + open, t.begin() + close, '\n'));
    i = close + 2;
  }
  return out;
}

// What an expression means: "" for {{ registry }}, else the image name of {{ "NAME" | image_tag }}.
Result<std::optional<std::string>> ParseExpr(const TreeImage& img, const Piece& p) {
  static const std::regex tag_re(R"(^\s*(["'])([^"']+)\1\s*\|\s*image_tag\s*$)");
  static const std::regex registry_re(R"(^\s*registry\s*$)");
  std::smatch m;
  if (std::regex_match(p.text, m, tag_re)) return std::optional<std::string>(m[2].str());
  if (std::regex_match(p.text, registry_re)) return std::optional<std::string>();
  return InvalidArgument(img.definition + ":" + std::to_string(p.line) + ": unsupported template expression {{" +
                         p.text + "}} (kiln tree supports {{ registry }} and {{ \"NAME\" | image_tag }}; "
                         "see docs/trees.md)");
}

}  // namespace

bool ValidName(const std::string& name) {
  static const std::regex re(R"(^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$)");
  return std::regex_match(name, re);
}

bool ValidVersion(const std::string& version) {
  static const std::regex re(R"(^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$)");
  return std::regex_match(version, re);
}

Result<ChangelogTop> ParseChangelogTop(const std::string& text) {
  static const std::regex re(R"(^([a-z0-9][a-z0-9.+_-]*) \(([^()\s]+)\)(.*)$)");
  ChangelogTop top;
  int n = 0;
  for (const std::string& l : Lines(text)) {
    ++n;
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    top.line = n;
    std::smatch m;
    if (std::regex_match(l, m, re)) {
      top.ok = true;
      top.name = m[1];
      top.version = m[2];
      top.rest = m[3];
    }
    return top;
  }
  top.line = n == 0 ? 1 : n;
  return top;
}

Result<std::vector<TreeRef>> FindTreeRefs(const TreeImage& img, const std::set<std::string>& names) {
  std::vector<TreeRef> refs;
  if (img.layout == Layout::kDockerPkg) {
    KILN_ASSIGN_OR_RETURN(std::vector<Piece> pieces, SplitTemplate(img));
    for (const Piece& p : pieces) {
      if (!p.expr) continue;
      KILN_ASSIGN_OR_RETURN(std::optional<std::string> name, ParseExpr(img, p));
      if (name) refs.push_back({*name, p.line});
    }
    return refs;
  }
  std::set<std::string> aliases;
  int n = 0;
  for (const std::string& l : Lines(img.text)) {
    ++n;
    auto f = ParseFrom(l);
    if (!f) continue;
    std::string name = NameOf(f->ref);
    if (f->ref.find('$') == std::string::npos && !aliases.count(Lower(f->ref)) && names.count(name)) {
      refs.push_back({name, n});
    }
    if (!f->alias.empty()) aliases.insert(f->alias);
  }
  return refs;
}

std::string TreeNaming::Path(const std::string& name) const {
  return name_space.empty() ? name : name_space + "/" + name;
}
std::string TreeNaming::Repo(const std::string& name) const {
  return registry.empty() ? Path(name) : registry + "/" + Path(name);
}
std::string TreeNaming::Ref(const std::string& name, const std::string& version) const {
  return Repo(name) + ":" + version;
}

Result<std::string> RenderDockerfile(const ImageTree& tree, const TreeImage& image, const TreeNaming& naming,
                                     const std::map<std::string, std::string>& versions) {
  auto version_of = [&](const std::string& n) {
    auto it = versions.find(n);
    return it != versions.end() ? it->second : tree.images.at(n).version;
  };
  std::string out;
  if (image.layout == Layout::kDockerPkg) {
    KILN_ASSIGN_OR_RETURN(std::vector<Piece> pieces, SplitTemplate(image));
    for (const Piece& p : pieces) {
      if (!p.expr) {
        out += p.text;
        continue;
      }
      KILN_ASSIGN_OR_RETURN(std::optional<std::string> name, ParseExpr(image, p));
      if (!name) {
        if (naming.registry.empty()) {
          return InvalidArgument(image.definition + ":" + std::to_string(p.line) +
                                 ": the template uses {{ registry }}: give --registry");
        }
        out += naming.registry;
      } else {
        out += naming.Path(*name) + ":" + version_of(*name);
      }
    }
    return out;
  }
  std::set<std::string> names;
  for (const auto& [n, _] : tree.images) names.insert(n);
  std::set<std::string> aliases;
  for (std::string l : Lines(image.text)) {
    auto f = ParseFrom(l);
    if (f) {
      std::string name = NameOf(f->ref);
      if (f->ref.find('$') == std::string::npos && !aliases.count(Lower(f->ref)) && names.count(name)) {
        l.replace(f->ref_pos, f->ref.size(), naming.Ref(name, version_of(name)));
      }
      if (!f->alias.empty()) aliases.insert(f->alias);
    }
    out += l + "\n";
  }
  return out;
}

std::optional<std::string> FinalBase(const std::string& dockerfile) {
  std::map<std::string, std::string> stages;  // alias → what it resolves to ("" for unknown)
  std::optional<std::string> last;
  for (const std::string& l : Lines(dockerfile)) {
    auto f = ParseFrom(l);
    if (!f) continue;
    std::optional<std::string> base;
    auto it = stages.find(Lower(f->ref));
    if (it != stages.end()) {
      base = it->second.empty() ? std::nullopt : std::optional<std::string>(it->second);
    } else if (f->ref.find('$') == std::string::npos && Lower(f->ref) != "scratch") {
      base = f->ref;
    }
    if (!f->alias.empty()) stages[f->alias] = base.value_or("");
    last = base;
  }
  return last;
}

std::string PinBase(const std::string& dockerfile, const std::string& base, const std::string& digest) {
  std::string out;
  for (std::string l : Lines(dockerfile)) {
    auto f = ParseFrom(l);
    if (f && f->ref == base) l.replace(f->ref_pos, f->ref.size(), base + "@" + digest);
    out += l + "\n";
  }
  return out;
}

std::string BumpVersion(const std::string& version) {
  static const std::regex re(R"(^(.*)-s([0-9]+)$)");
  std::smatch m;
  if (std::regex_match(version, m, re)) return m[1].str() + "-s" + std::to_string(std::stoi(m[2]) + 1);
  return version + "-s1";
}

namespace {
Status WriteWhole(const std::string& path, const std::string& text) {
  KILN_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(path));
  KILN_RETURN_IF_ERROR(out->Write(text));
  return out->Close();
}
Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

Status WriteBump(const TreeImage& image, const std::string& new_version, const std::string& reason,
                 const std::string& date_rfc2822) {
  std::string changelog = (std::filesystem::path(image.dir) / "changelog").string();
  std::string old;
  std::string rest = " unstable; urgency=medium";
  if (std::filesystem::exists(changelog)) {
    KILN_ASSIGN_OR_RETURN(old, ReadWhole(changelog));
    KILN_ASSIGN_OR_RETURN(ChangelogTop top, ParseChangelogTop(old));
    if (top.ok && !top.rest.empty()) rest = top.rest;
  }
  if (image.layout == Layout::kKiln) {
    KILN_ASSIGN_OR_RETURN(std::string yaml, ReadWhole(image.metadata));
    static const std::regex version_line(R"((^|\n)version[ \t]*:[^\n]*)");
    if (!std::regex_search(yaml, version_line)) return InvalidArgument(image.metadata + ": no top-level version line to update");
    yaml = std::regex_replace(yaml, version_line, "$1version: \"" + new_version + "\"",
                              std::regex_constants::format_first_only);
    KILN_RETURN_IF_ERROR(WriteWhole(image.metadata, yaml).WithContext("updating " + image.metadata));
  }
  std::string entry = image.name + " (" + new_version + ")" + rest + "\n\n  * " + reason +
                      "\n\n -- kiln tree <kiln@localhost>  " + date_rfc2822 + "\n\n";
  return WriteWhole(changelog, entry + old).WithContext("updating " + changelog);
}

}  // namespace kiln::tree
