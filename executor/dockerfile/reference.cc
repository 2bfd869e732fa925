// Syntax check for image references, so the plan can tell an image in `COPY --from=` or `FROM`
// from a typo. The grammar is core's (core/reference.h); this only words the answer as
// distribution/reference does, which is what `docker build` prints.
#include "executor/dockerfile/reference.h"

#include "core/reference.h"

namespace kiln::dockerfile {

std::string CheckImageReference(std::string_view ref) {
  const std::string kBad = "invalid reference format";
  switch (CheckReference(ref)) {
    case ReferenceError::kNone: return "";
    case ReferenceError::kUppercase: return kBad + ": repository name must be lowercase";
    case ReferenceError::kNameTooLong: return kBad + ": repository name must not be more than 255 characters";
    case ReferenceError::kFormat: break;
  }
  return kBad;
}

}  // namespace kiln::dockerfile
