// Captions of scenes and the reverse: what a prompt in the built-in vocabulary asks for.
//
// The vocabulary (docs/builtin-model.md): skies "on a clear day", "under a blue sky", "at sunset", "at
// night", "on an overcast day", "under a cloudy sky"; grounds "over grass", "on a meadow", "over sand",
// "in the desert", "over snow", "over the sea", "above the ocean"; objects ball, box, kite in red, orange,
// yellow, green, blue, purple, white, black; extras "with the sun", "with the moon", "with clouds".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "scenes/scene.h"

namespace clipgen::scenes {

// A caption of the scene with its word order and synonyms drawn from `seed`
// ("a red ball over snow at sunset", "at night, a blue kite above the ocean", …). Every attribute
// (sky, ground, object and colour, each extra the scene has) is named; nothing else is.
std::string caption(const Scene& scene, uint64_t seed);

// What a prompt names. Words of the vocabulary's phrases are consumed; the rest are reported in
// `unknown` (articles and connecting words such as "a", "the", "with", "and" are not).
struct PromptParse {
  std::optional<Sky> sky;
  std::optional<Ground> ground;
  std::optional<Object> object;
  std::optional<Colour> colour;
  bool sun = false, moon = false, clouds = false;
  std::vector<std::string> unknown;  // in prompt order, lower-cased, each once
};
PromptParse parse_prompt(const std::string& prompt);

// A scene that shows what the prompt names (unnamed attributes drawn from the seed, no unnamed extras):
// the ground truth a prompt's render is judged against, and the stand-in renderer's picture.
Scene scene_for_prompt(const PromptParse& prompt, uint64_t seed);

// The phrases of each class (first = canonical), for captions, probes and documentation.
const std::vector<std::string>& phrases(Sky s);
const std::vector<std::string>& phrases(Ground g);

}  // namespace clipgen::scenes
