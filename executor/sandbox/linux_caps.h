// Small Linux capability queries (capget(2) directly, so kiln needs no libcap).
#pragma once

namespace kiln::sandbox {

/// True when the calling thread has capability `cap` (a CAP_* number) in its effective set.
bool HasEffectiveCap(int cap);

}  // namespace kiln::sandbox
