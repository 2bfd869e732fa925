// Image trees (`kiln tree`): a directory of image definitions, the FROM edges between them, the
// rendering of each definition into a Dockerfile, version bumps and changelog entries, and the CI
// pipelines that build a tree elsewhere. No registry access and no builds here: cmd/tree_command.cc
// asks the registry what exists and runs the builds; this module is the pure part plus the tree's
// own files (read on Load, written only by WriteBump).
//
// Two layouts (docs/trees.md):
//   kiln:       DIR/NAME/Dockerfile + DIR/NAME/image.yaml (name, version, optional build_args map);
//               a FROM whose image name (without tag) is a tree image's name, or its full name under
//               the tree's prefix, is an edge, and is rewritten to that image's current version.
//   docker-pkg: DIR/images/NAME/Dockerfile.template (or DIR/NAME/...) + a Debian `changelog` whose
//               top entry names the image and its version. The template may use only
//               {{ registry }} and {{ "NAME" | image_tag }} (each "NAME" is an edge); any other
//               Jinja construct is an error naming file:line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln::tree {

/// How tree images are named: REGISTRY/NAMESPACE/NAME:VERSION (either prefix may be empty).
struct TreeNaming {
  std::string registry;   // "registry.example.com", "127.0.0.1:5000"
  std::string name_space; // "team" (docker-pkg's "namespace")
  /// "NAMESPACE/NAME" (docker-pkg's image_tag without the tag).
  std::string Path(const std::string& name) const;
  /// "REGISTRY/NAMESPACE/NAME".
  std::string Repo(const std::string& name) const;
  /// "REGISTRY/NAMESPACE/NAME:VERSION".
  std::string Ref(const std::string& name, const std::string& version) const;
};

enum class Layout { kKiln, kDockerPkg };

struct TreeImage {
  std::string name;
  std::string version;
  Layout layout = Layout::kKiln;
  std::string dir;         // the build context: DIR/NAME
  std::string definition;  // Dockerfile or Dockerfile.template (absolute)
  std::string metadata;    // image.yaml or changelog (absolute)
  std::string text;        // the definition's text as read
  std::map<std::string, std::string> build_args;
  std::vector<std::string> parents;  // tree images it uses, sorted, unique
};

struct ImageTree {
  std::string root;
  std::map<std::string, TreeImage> images;
  /// Every image after all its parents; ties in name order.
  std::vector<std::string> order;

  /// The image and all its descendants' names, in `order`.
  std::vector<std::string> Descendants(const std::string& name) const;
};

/// Reads the tree under `dir`. Fails with kInvalidArgument naming the file for a malformed
/// image.yaml or changelog, an unsupported template construct, a duplicate name, an edge to an
/// image the tree does not have, or a cycle (listing its images).
Result<ImageTree> LoadTree(const std::string& dir);

/// The Dockerfile to build `image` with: tree references resolved to `naming` at `versions`
/// (name → version; images missing from it use their own version).
Result<std::string> RenderDockerfile(const ImageTree& tree, const TreeImage& image, const TreeNaming& naming,
                                     const std::map<std::string, std::string>& versions);

/// The image reference the final stage of `dockerfile` is built FROM, resolving stage names;
/// nullopt for `scratch` or a FROM that uses a build argument.
std::optional<std::string> FinalBase(const std::string& dockerfile);

/// `dockerfile` with every FROM of exactly `base` pinned to `base@digest` (Docker's tag@digest form:
/// the tag stays readable, the digest decides).
std::string PinBase(const std::string& dockerfile, const std::string& base, const std::string& digest);

/// docker-pkg's rule: "1.2.3" → "1.2.3-s1", "1.2.3-s1" → "1.2.3-s2".
std::string BumpVersion(const std::string& version);

/// Writes `new_version` into the image's files: image.yaml's version line (kiln layout) and a
/// Debian changelog entry prepended to NAME/changelog (created for the kiln layout) saying
/// `reason`. `date_rfc2822` is the entry's date.
Status WriteBump(const TreeImage& image, const std::string& new_version, const std::string& reason,
                 const std::string& date_rfc2822);

/// One image a CI pipeline builds, with the versions of its tree ancestors.
struct EmitJob {
  std::string name;
  std::string version;
  std::vector<std::string> needs;                   // parents built in the same pipeline
  std::map<std::string, std::string> set_versions;  // name → version for it and its ancestors
};

struct EmitOptions {
  std::string tree_dir;        // as the job sees it (relative to the checkout)
  TreeNaming naming;
  std::string kiln_image;  // GitLab: a shell is needed (kiln's :debug image); Kubernetes: kiln's image
  std::vector<std::string> extra_args;  // passed to every `kiln tree build` (e.g. --insecure-registry=R)
  std::string git_url = "https://git.example.com/team/images.git";  // k8s: the checkout
  std::string git_ref = "main";
};

/// A GitLab CI child pipeline: one job per image, `needs:` following the tree; each job writes
/// $CI_REGISTRY's credentials (when set) to a private docker config first.
std::string EmitGitlabCi(const std::vector<EmitJob>& jobs, const EmitOptions& o);
/// Kubernetes Jobs, one per image; each waits for its parents' tags in init containers.
std::string EmitKubernetes(const std::vector<EmitJob>& jobs, const EmitOptions& o);

}  // namespace kiln::tree
