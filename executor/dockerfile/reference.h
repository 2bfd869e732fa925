// Syntax check for image references (distribution/reference grammar), so the plan can tell an image
// in `COPY --from=` or `FROM` from a typo. Local to the frontend: it does not normalise or resolve.
#pragma once

#include <string>
#include <string_view>

namespace kiln::dockerfile {

/// "" when `ref` is a valid reference ("alpine", "ghcr.io/a/b:1.2", "x@sha256:<64 hex>"), else why
/// not, in the words of distribution/reference ("invalid reference format: repository name must be
/// lowercase").
std::string CheckImageReference(std::string_view ref);

}  // namespace kiln::dockerfile
