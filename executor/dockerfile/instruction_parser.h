// Parsing one logical line of a Dockerfile into a typed instruction: the flags, argument forms and
// checks of each instruction. Internal to the Dockerfile frontend; Parse (parser.h) drives it.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "executor/dockerfile/errors.h"
#include "executor/dockerfile/instructions.h"
#include "executor/dockerfile/lexer.h"

namespace kiln::dockerfile {

/// Parses `ll` (a line lexed from `src`) with `escape` as the escape character. Appends notes for the
/// user to `warnings` when it is not null. Errors: kInvalidArgument pointing into `src`.
Result<Instruction> ParseInstruction(const Source& src, const LogicalLine& ll, char escape,
                                     std::vector<std::string>* warnings);

}  // namespace kiln::dockerfile
