// Reading an image tree: the two layouts, the edges between images, and their order.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "executor/tree/tree.h"
#include "executor/tree/tree_text.h"

namespace kiln::tree {
namespace fs = std::filesystem;

namespace {

Result<std::string> ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return NotFound(p.string() + ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status LoadKilnMetadata(const fs::path& yaml_path, TreeImage& img) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadText(yaml_path));
  auto bad = [&](const std::string& why) { return InvalidArgument(yaml_path.string() + ": " + why); };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return bad("not valid YAML: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return bad("expected a mapping with name and version");
  try {
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      if (key == "name") {
        if (!kv.second.IsScalar()) return bad("name must be a string");
        img.name = kv.second.as<std::string>();
      } else if (key == "version") {
        if (!kv.second.IsScalar()) return bad("version must be a string");
        img.version = kv.second.as<std::string>();
      } else if (key == "build_args") {
        if (!kv.second.IsMap()) return bad("build_args must be a mapping NAME: VALUE");
        for (const auto& a : kv.second) img.build_args[a.first.as<std::string>()] = a.second.as<std::string>();
      } else {
        return bad("unknown key \"" + key + "\" (known: name, version, build_args)");
      }
    }
  } catch (const YAML::Exception& e) {
    return bad(e.msg);
  }
  if (img.name.empty()) return bad("no name");
  if (img.version.empty()) return bad("no version");
  if (!ValidName(img.name)) return bad("name \"" + img.name + "\" is not a valid repository name component");
  if (!ValidVersion(img.version)) return bad("version \"" + img.version + "\" is not a valid tag");
  return OkStatus();
}

Status LoadChangelogMetadata(const fs::path& changelog, TreeImage& img) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadText(changelog));
  KILN_ASSIGN_OR_RETURN(ChangelogTop top, ParseChangelogTop(text));
  if (!top.ok) {
    return InvalidArgument(changelog.string() + ": line " + std::to_string(top.line) +
                           ": expected a Debian changelog entry \"NAME (VERSION) DIST; urgency=...\"");
  }
  img.name = top.name;
  img.version = top.version;
  if (!ValidName(img.name)) {
    return InvalidArgument(changelog.string() + ": name \"" + img.name + "\" is not a valid repository name component");
  }
  if (!ValidVersion(img.version)) {
    return InvalidArgument(changelog.string() + ": version \"" + img.version + "\" is not a valid tag");
  }
  return OkStatus();
}

// The folder holding one directory per image: DIR/images for docker-pkg's layout, else DIR.
fs::path ImagesRoot(const fs::path& dir) {
  fs::path images = dir / "images";
  std::error_code ec;
  if (fs::is_directory(images, ec) && !fs::exists(dir / "image.yaml")) return images;
  return dir;
}

// Lists a cycle among `left` (images whose parents never all got ordered).
std::string DescribeCycle(const ImageTree& t, const std::set<std::string>& left) {
  std::map<std::string, int> state;
  std::vector<std::string> stack;
  std::string found;
  std::function<bool(const std::string&)> dfs = [&](const std::string& n) {
    state[n] = 1;
    stack.push_back(n);
    for (const std::string& p : t.images.at(n).parents) {
      if (!left.count(p)) continue;
      if (state[p] == 1) {
        auto it = std::find(stack.begin(), stack.end(), p);
        for (; it != stack.end(); ++it) found += *it + " (" + t.images.at(*it).definition + ") -> ";
        found += p;
        return true;
      }
      if (state[p] == 0 && dfs(p)) return true;
    }
    stack.pop_back();
    state[n] = 2;
    return false;
  };
  for (const std::string& n : left) {
    if (state[n] == 0 && dfs(n)) break;
  }
  return found;
}

}  // namespace

Result<ImageTree> LoadTree(const std::string& dir) {
  ImageTree t;
  std::error_code ec;
  fs::path root = fs::absolute(dir, ec);
  if (!fs::is_directory(root, ec)) return NotFound(dir + ": not a directory");
  t.root = root.string();
  fs::path images_root = ImagesRoot(root);
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(images_root, ec)) {
    if (e.is_directory()) subdirs.push_back(e.path());
  }
  std::sort(subdirs.begin(), subdirs.end());
  for (const fs::path& d : subdirs) {
    TreeImage img;
    img.dir = d.string();
    if (fs::exists(d / "image.yaml")) {
      img.layout = Layout::kKiln;
      img.metadata = (d / "image.yaml").string();
      img.definition = (d / "Dockerfile").string();
      KILN_RETURN_IF_ERROR(LoadKilnMetadata(d / "image.yaml", img));
    } else if (fs::exists(d / "Dockerfile.template")) {
      img.layout = Layout::kDockerPkg;
      img.definition = (d / "Dockerfile.template").string();
      img.metadata = (d / "changelog").string();
      if (!fs::exists(d / "changelog")) {
        return InvalidArgument(img.definition + ": no changelog next to it (docker-pkg's layout needs one)");
      }
      KILN_RETURN_IF_ERROR(LoadChangelogMetadata(d / "changelog", img));
    } else {
      continue;  // not an image directory
    }
    auto text = ReadText(img.definition);
    if (!text.ok()) return NotFound(img.definition + ": missing (" + img.metadata + " names image " + img.name + ")");
    img.text = std::move(text).value();
    if (t.images.count(img.name)) {
      return InvalidArgument(img.metadata + ": image name \"" + img.name + "\" is also used by " +
                             t.images[img.name].metadata);
    }
    t.images[img.name] = std::move(img);
  }
  if (t.images.empty()) {
    return InvalidArgument(dir + ": no images (expected NAME/Dockerfile + NAME/image.yaml, or "
                           "images/NAME/Dockerfile.template + changelog)");
  }
  // Edges.
  std::set<std::string> names;
  for (const auto& [n, _] : t.images) names.insert(n);
  for (auto& [n, img] : t.images) {
    KILN_ASSIGN_OR_RETURN(std::vector<TreeRef> refs, FindTreeRefs(img, names));
    std::set<std::string> parents;
    for (const TreeRef& r : refs) {
      if (!names.count(r.name)) {
        return InvalidArgument(img.definition + ":" + std::to_string(r.line) + ": uses image \"" + r.name +
                               "\", which the tree does not have");
      }
      if (r.name == n) return InvalidArgument(img.definition + ":" + std::to_string(r.line) + ": image " + n + " uses itself");
      parents.insert(r.name);
    }
    img.parents.assign(parents.begin(), parents.end());
  }
  // Order: Kahn's algorithm, ready images in name order.
  std::map<std::string, int> missing;
  for (const auto& [n, img] : t.images) missing[n] = static_cast<int>(img.parents.size());
  std::set<std::string> ready, left(names);
  for (const auto& [n, c] : missing) if (c == 0) ready.insert(n);
  while (!ready.empty()) {
    std::string n = *ready.begin();
    ready.erase(ready.begin());
    left.erase(n);
    t.order.push_back(n);
    for (const auto& [m, img] : t.images) {
      if (std::find(img.parents.begin(), img.parents.end(), n) != img.parents.end() && --missing[m] == 0) {
        ready.insert(m);
      }
    }
  }
  if (!left.empty()) return InvalidArgument("the image tree has a cycle: " + DescribeCycle(t, left));
  return t;
}

std::vector<std::string> ImageTree::Descendants(const std::string& name) const {
  std::set<std::string> in{name};
  std::vector<std::string> out;
  for (const std::string& n : order) {
    const TreeImage& img = images.at(n);
    bool d = n == name;
    for (const std::string& p : img.parents) d = d || in.count(p);
    if (d) {
      in.insert(n);
      out.push_back(n);
    }
  }
  return out;
}

}  // namespace kiln::tree
