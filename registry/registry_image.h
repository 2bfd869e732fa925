// Images in a registry as an ImageSource / ImageSink (core/image_store.h).
#pragma once

#include <memory>

#include "core/image_store.h"
#include "core/reference.h"
#include "registry/client.h"

namespace kiln::registry {

/// Opens `ref` in a registry, through the client's pull endpoints (docker.io mirrors first).
/// The root manifest is fetched eagerly (which picks the endpoint that has it).
Result<std::unique_ptr<ImageSource>> OpenRegistrySource(Client& client, const Reference& ref);
/// A sink pushing to `ref`: the root is tagged ref.TagOrDefault(), or put by digest for a digest-only
/// reference. Blobs are HEADed first and mounted from a source in the same registry when possible.
Result<std::unique_ptr<ImageSink>> OpenRegistrySink(Client& client, const Reference& ref);
/// The same over a repository already opened with push scope (e.g. when the destination was checked
/// before the build), so one destination is opened once.
std::unique_ptr<ImageSink> OpenRegistrySink(Client& client, const Reference& ref, std::shared_ptr<Repository> repo);

}  // namespace kiln::registry
