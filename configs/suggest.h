// "Did you mean ...?" suggestions for misspelt keys, preset names and enum values.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace clipgen::configs {

// Edit distance (insert, delete, substitute, swap two adjacent characters; each costs 1), case-sensitive.
int edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, or "" when none is close: the smallest edit distance if it is at most
// 1 for words of up to 4 characters, else max(2, size / 3) (ties: the first in `candidates`); otherwise the first
// candidate that contains `word` (at least 3 characters) as a substring, e.g. "reels" → "instagram-reels".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "" — ready to append to a message.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace clipgen::configs
