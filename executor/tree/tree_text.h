// The text work behind tree.h: Dockerfile FROM lines, docker-pkg's template subset, Debian changelog
// headers, names and versions. Internal to executor/tree.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "executor/tree/tree.h"

namespace kiln::tree {

bool ValidName(const std::string& name);
bool ValidVersion(const std::string& version);

struct ChangelogTop {
  bool ok = false;
  int line = 1;
  std::string name, version, rest;  // rest: " DIST; urgency=..." after the version's ')'
};
/// The first entry's header line of a Debian changelog.
Result<ChangelogTop> ParseChangelogTop(const std::string& text);

/// A use of a tree image in a definition.
struct TreeRef {
  std::string name;
  int line = 0;
};
/// The tree images `img` uses (FROM lines in the kiln layout; image_tag in docker-pkg templates);
/// for the kiln layout only names in `names` count. Fails on an unsupported template construct.
Result<std::vector<TreeRef>> FindTreeRefs(const TreeImage& img, const std::set<std::string>& names);

}  // namespace kiln::tree
