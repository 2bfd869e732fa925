// Opens an ImageLocation (core/image_location.h) as the store it names: a registry through
// `client`, an OCI layout directory or a docker-archive tar. The one place that knows every kind, so
// `kiln copy` and every output of `kiln build` open stores the same way, and a new output format is
// one new sink here.
#pragma once

#include <memory>

#include "core/image_location.h"
#include "core/image_store.h"
#include "registry/client.h"

namespace kiln::executor {

Result<std::unique_ptr<ImageSource>> OpenImageSource(registry::Client& client, const ImageLocation& loc);

/// A docker-archive destination is tagged with loc.repo_tags, or with loc.reference when none.
/// A registry destination opens its repository on the client's push endpoint.
Result<std::unique_ptr<ImageSink>> OpenImageSink(registry::Client& client, const ImageLocation& loc);

}  // namespace kiln::executor
