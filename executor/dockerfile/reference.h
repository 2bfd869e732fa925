// Syntax check for image references, so the plan can tell an image in `COPY --from=` or `FROM` from
// a typo. The grammar is core's Reference (one grammar for the whole program); the answer is worded
// as distribution/reference words it. Nothing is normalised or resolved here.
#pragma once

#include <string>
#include <string_view>

namespace kiln::dockerfile {

/// "" when `ref` is a valid reference ("alpine", "ghcr.io/a/b:1.2", "x@sha256:<64 hex>"), else why
/// not, in the words of distribution/reference ("invalid reference format: repository name must be
/// lowercase").
std::string CheckImageReference(std::string_view ref);

}  // namespace kiln::dockerfile
