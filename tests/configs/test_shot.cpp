// Shot files: the shipped examples resolve as documented; defaults merge; paths resolve against the
// YAML file; outputs stay inside the output root; ids are unique across files; warnings.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "configs/shot.h"
#include "core/error.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace clipgen;
using namespace clipgen::configs;

namespace {

fs::path examples() { return fs::path(CLIPGEN_SOURCE_DIR) / "examples"; }

using test::write_file;

std::string error_of(const std::vector<fs::path>& files, const LoadOptions& opt) {
  try {
    load_shots(files, opt);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

TEST(ShotSeed, DefaultSeedIsFoldedFnv1a64OfTheId) {
  // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published FNV test vector); folded: 0xaf63dc4c ^ 0x8601ec8c.
  EXPECT_EQ(default_seed("a"), 0xaf63dc4cULL ^ 0x8601ec8cULL);
  // FNV-1a 64 of "" is the offset basis 0xcbf29ce484222325.
  EXPECT_EQ(default_seed(""), 0xcbf29ce4ULL ^ 0x84222325ULL);
  EXPECT_EQ(default_seed("quickstart"), 2263921264ULL);  // computed independently in Python
  EXPECT_NE(default_seed("quickstart"), default_seed("quickstarT"));
}

TEST(Examples, QuickstartResolves) {
  const fs::path root = test::scratch_dir("shot_quickstart");
  const auto list = load_shots({examples() / "quickstart.yaml"}, LoadOptions{.out_root = root / "renders"});
  ASSERT_EQ(list.shots.size(), 1u);
  EXPECT_TRUE(list.warnings.empty());
  const Shot& s = list.shots[0];
  EXPECT_EQ(s.id, "quickstart");
  EXPECT_EQ(s.preset.name, "vertical-short");
  EXPECT_EQ(s.preset.width, 1080);
  EXPECT_EQ(s.preset.height, 1920);
  EXPECT_EQ(s.fps, (Rational{30, 1}));
  EXPECT_EQ(s.frames, 120);
  EXPECT_DOUBLE_EQ(s.duration, 4.0);
  EXPECT_EQ(s.seed, 2263921264ULL);
  ASSERT_EQ(s.keyframes.size(), 1u);
  EXPECT_EQ(s.keyframes[0].frame, 0);
  EXPECT_EQ(s.keyframes[0].prompt, s.prompt);
  EXPECT_EQ(s.prompt, "a red ball over snow at sunset");
  EXPECT_EQ(s.keyframe_model.kind, ModelRef::Kind::Builtin);
  EXPECT_EQ(s.keyframe_model.path, builtin_keyframe_model()) << "builtin means the shipped diffusers folder";
  EXPECT_TRUE(s.keyframe_model.is_folder());
  EXPECT_EQ(s.temporal_model.kind, ModelRef::Kind::Builtin);
  EXPECT_EQ(s.output, fs::weakly_canonical(root / "renders") / "quickstart.mp4");
  EXPECT_EQ(s.source_file, examples() / "quickstart.yaml");
  EXPECT_EQ(s.source_line, 6);
  EXPECT_EQ(s.sampler.name, "euler");  // struct defaults
  EXPECT_EQ(s.sampler.steps, 25);
  EXPECT_EQ(s.gen_width, 0);
  EXPECT_FALSE(s.audio);
}

TEST(Examples, ShotListMergesDefaults) {
  const fs::path root = test::scratch_dir("shot_list") / "out";
  const auto list = load_shots({examples() / "shotlist.yaml"}, LoadOptions{.out_root = root});
  ASSERT_EQ(list.shots.size(), 3u);
  EXPECT_TRUE(list.warnings.empty());
  const Shot& a = list.shots[0];
  EXPECT_EQ(a.id, "meadow-box");
  EXPECT_EQ(a.preset.name, "vertical-short");
  EXPECT_EQ(a.negative_prompt, "blurry, low quality, text, watermark");
  EXPECT_EQ(a.frames, 90);
  EXPECT_EQ(a.sampler.steps, 25);
  EXPECT_EQ(a.keyframes.size(), 1u);
  EXPECT_EQ(a.keyframes[0].negative_prompt, a.negative_prompt);

  const Shot& b = list.shots[1];
  EXPECT_EQ(b.id, "sea-day-to-night");
  EXPECT_EQ(b.preset.name, "hd");
  EXPECT_EQ(b.frames, 120);
  ASSERT_EQ(b.keyframes.size(), 2u);
  EXPECT_EQ(b.keyframes[0].frame, 0);
  EXPECT_EQ(b.keyframes[1].frame, 75);  // 2.5 s at 30 fps
  EXPECT_DOUBLE_EQ(b.keyframes[1].at_seconds, 2.5);
  EXPECT_NE(b.keyframes[1].prompt.find("night"), std::string::npos);
  EXPECT_EQ(b.sampler.steps, 30);      // the shot's own value
  EXPECT_EQ(b.sampler.name, "euler");  // merged from defaults key by key
  EXPECT_DOUBLE_EQ(b.sampler.guidance, 7.5);
  EXPECT_EQ(b.motion.motion_bucket_id, 127);
  EXPECT_EQ(b.output, fs::weakly_canonical(root) / "sea-day-to-night.mp4");

  const Shot& c = list.shots[2];
  EXPECT_EQ(c.id, "square-loop");
  EXPECT_EQ(c.preset.name, "square");
  EXPECT_EQ(c.fps, (Rational{24, 1}));
  EXPECT_EQ(c.frames, 48);
  EXPECT_DOUBLE_EQ(c.duration, 2.0);
  EXPECT_EQ(c.seed, 1234u);
  EXPECT_EQ(c.output, fs::weakly_canonical(root) / "loops" / "square-loop.mp4");
}

TEST(Examples, FilmScopeResolves) {
  const auto list =
      load_shots({examples() / "film-scope.yaml"}, LoadOptions{.out_root = test::scratch_dir("shot_film")});
  ASSERT_EQ(list.shots.size(), 1u);
  EXPECT_TRUE(list.warnings.empty());  // a title, but cinema has no platform UI
  const Shot& s = list.shots[0];
  EXPECT_EQ(s.preset.name, "dci-scope-2k");
  EXPECT_EQ(s.preset.width, 2048);
  EXPECT_EQ(s.preset.height, 858);
  EXPECT_EQ(s.fps, (Rational{24, 1}));
  EXPECT_EQ(s.frames, 72);
  EXPECT_EQ(s.gen_width, 0);  // the built-in model's own raster in the preset's aspect
  EXPECT_EQ(s.sampler.name, "dpmpp_2m");
  EXPECT_EQ(s.motion.motion_bucket_id, 90);
  EXPECT_EQ(s.motion.generation_fps, 8);
  EXPECT_EQ(s.post.retime, "mci");
  EXPECT_EQ(s.title, "Chapter One");
  EXPECT_EQ(s.output.extension(), ".mov");
}

TEST(Examples, AllTogetherHaveUniqueIdsAndOutputs) {
  const auto list =
      load_shots({examples() / "quickstart.yaml", examples() / "shotlist.yaml", examples() / "film-scope.yaml"},
                 LoadOptions{.out_root = test::scratch_dir("shot_all")});
  EXPECT_EQ(list.shots.size(), 5u);
}

TEST(ShotJson, IsCompactAndComplete) {
  const auto list = load_shots({examples() / "shotlist.yaml"}, LoadOptions{.out_root = test::scratch_dir("shot_json")});
  const Shot& b = list.shots[1];
  const std::string text = b.to_json();
  EXPECT_EQ(text.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["id"], "sea-day-to-night");
  EXPECT_EQ(j["preset"]["name"], "hd");
  EXPECT_EQ(j["preset"]["width"], 1920);
  EXPECT_EQ(j["fps"], "30/1");
  EXPECT_EQ(j["frames"], 120);
  EXPECT_EQ(j["seed"], default_seed("sea-day-to-night"));
  ASSERT_EQ(j["keyframes"].size(), 2u);
  EXPECT_EQ(j["keyframes"][1]["frame"], 75);
  EXPECT_EQ(j["sampler"]["steps"], 30);
  EXPECT_EQ(j["models"]["keyframe"]["kind"], "builtin");
  EXPECT_EQ(j["output"], b.output.string());
  EXPECT_TRUE(j["audio"].is_null());
}

TEST(Shot, PathsResolveAgainstTheYamlFolder) {
  const fs::path dir = test::scratch_dir("shot_paths");
  write_file(dir / "project/shots/img/start.png", "png");
  write_file(dir / "project/shots/audio/bed.wav", "wav");
  write_file(dir / "project/models/sd/model_index.json", "{}");
  write_file(dir / "project/models/svd.safetensors", "x");
  write_file(dir / "project/shots/a.yaml", R"(id: a
preset: hd
duration: 2
prompt: x
audio: audio/bed.wav
keyframes:
  - at: f0
    image: img/start.png
    strength: 0.6
  - at: 1.5
    prompt: y
models:
  keyframe: ../models/sd
  temporal: ../models/svd.safetensors
)");
  const auto list = load_shots({dir / "project/shots/a.yaml"}, LoadOptions{.out_root = dir / "out"});
  const Shot& s = list.shots[0];
  EXPECT_EQ(*s.audio, dir / "project/shots/audio/bed.wav");
  EXPECT_EQ(*s.keyframes[0].image, dir / "project/shots/img/start.png");
  EXPECT_DOUBLE_EQ(s.keyframes[0].strength, 0.6);
  EXPECT_EQ(s.keyframes[1].frame, 45);
  EXPECT_EQ(s.keyframes[1].prompt, "y");
  EXPECT_EQ(s.keyframe_model.kind, ModelRef::Kind::DiffusersFolder);
  EXPECT_EQ(s.keyframe_model.path, dir / "project/models/sd");
  EXPECT_EQ(s.keyframe_model.spec, "../models/sd");
  EXPECT_EQ(s.temporal_model.kind, ModelRef::Kind::SingleFile);
  EXPECT_EQ(s.temporal_model.path, dir / "project/models/svd.safetensors");
}

TEST(Shot, FolderWithoutConfigIsNotAModel) {
  const fs::path dir = test::scratch_dir("shot_model_folder");
  fs::create_directories(dir / "empty");
  write_file(dir / "a.yaml", "id: a\nduration: 1\nprompt: x\nmodels: {keyframe: empty}\n");
  EXPECT_EQ(error_of({dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"}),
            (dir / "a.yaml").string() +
                ":4:20: models.keyframe: expected 'builtin', 'procedural', a diffusers folder or a "
                ".safetensors file, got 'empty' (the folder " +
                (dir / "empty").string() + " has neither model_index.json nor config.json)");
}

TEST(Shot, CheckFilesOffAcceptsMissingFiles) {
  const fs::path dir = test::scratch_dir("shot_nocheck");
  write_file(dir / "a.yaml",
        "id: a\nduration: 1\nprompt: x\naudio: none.wav\nmodels: {keyframe: m.safetensors, temporal: svd}\n");
  LoadOptions o = LoadOptions{.out_root = dir / "out"};
  o.check_files = false;
  const auto list = load_shots({dir / "a.yaml"}, o);
  EXPECT_EQ(*list.shots[0].audio, dir / "none.wav");
  EXPECT_EQ(list.shots[0].keyframe_model.kind, ModelRef::Kind::SingleFile);
  EXPECT_EQ(list.shots[0].temporal_model.kind, ModelRef::Kind::DiffusersFolder);
}

TEST(Shot, TimesFpsAndImplicitFirstKeyframe) {
  const fs::path dir = test::scratch_dir("shot_times");
  write_file(dir / "a.yaml", R"(id: a
preset: hd
fps: 29.97
duration: 3s
prompt: start
keyframes:
  - at: 1s
    prompt: one
  - at: f60
    prompt: two
)");
  const Shot s = load_shots({dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"}).shots[0];
  EXPECT_EQ(s.fps, (Rational{30000, 1001}));
  EXPECT_EQ(s.frames, 90);  // round(3 * 29.97)
  ASSERT_EQ(s.keyframes.size(), 3u);
  EXPECT_EQ(s.keyframes[0].frame, 0);  // implicit: the shot prompt until the first keyframe
  EXPECT_EQ(s.keyframes[0].prompt, "start");
  EXPECT_EQ(s.keyframes[1].frame, 30);
  EXPECT_EQ(s.keyframes[2].frame, 60);
  EXPECT_NEAR(s.keyframes[2].at_seconds, 60 / (30000.0 / 1001), 1e-12);
}

TEST(Shot, NegativePromptUnsetEmptyAndDropped) {
  // Unset and "" differ (SDXL zeros the unconditional embeddings only for "none"); a keyframe inherits the
  // shot's unless it sets its own, and `~` drops it.
  const fs::path dir = test::scratch_dir("shot_negative");
  write_file(dir / "a.yaml", R"(id: a
preset: hd
duration: 3s
prompt: start
keyframes:
  - prompt: zero
  - at: 1s
    negative_prompt: ""
)");
  write_file(dir / "b.yaml", R"(id: b
preset: hd
duration: 3s
prompt: start
negative_prompt: blurry
keyframes:
  - prompt: zero
  - at: 1s
    negative_prompt: ~
  - at: 2s
    negative_prompt:
)");
  const auto list = load_shots({dir / "a.yaml", dir / "b.yaml"}, LoadOptions{.out_root = dir / "out"});
  const Shot& a = list.shots[0];
  EXPECT_FALSE(a.negative_prompt.has_value());
  EXPECT_FALSE(a.keyframes[0].negative_prompt.has_value());
  EXPECT_EQ(a.keyframes[1].negative_prompt, std::optional<std::string>(""));
  const auto j = nlohmann::json::parse(a.to_json());
  EXPECT_TRUE(j["negative_prompt"].is_null());
  EXPECT_EQ(j["keyframes"][1]["negative_prompt"], "");
  const Shot& b = list.shots[1];
  EXPECT_EQ(b.keyframes[0].negative_prompt, std::optional<std::string>("blurry"));
  EXPECT_FALSE(b.keyframes[1].negative_prompt.has_value());
  EXPECT_FALSE(b.keyframes[2].negative_prompt.has_value());
}

TEST(Shot, PrecisionIsReadCheckedAndOverridden) {
  const fs::path dir = test::scratch_dir("shot_precision");
  write_file(dir / "a.yaml", "id: a\npreset: hd\nduration: 1\nprompt: x\nprecision: bf16\n");
  write_file(dir / "b.yaml", "id: b\npreset: hd\nduration: 1\nprompt: x\n");
  auto list = load_shots({dir / "a.yaml", dir / "b.yaml"}, LoadOptions{.out_root = dir / "out"});
  EXPECT_EQ(list.shots[0].precision, "bf16");
  EXPECT_EQ(list.shots[1].precision, "auto");
  EXPECT_EQ(nlohmann::json::parse(list.shots[0].to_json())["precision"], "bf16");
  EXPECT_FALSE(nlohmann::json::parse(list.shots[1].to_json()).contains("precision"));  // auto: hash as before

  // --precision wins over the files.
  LoadOptions o{.out_root = dir / "out"};
  o.precision_override = "fp32";
  list = load_shots({dir / "a.yaml", dir / "b.yaml"}, o);
  EXPECT_EQ(list.shots[0].precision, "fp32");
  EXPECT_EQ(list.shots[1].precision, "fp32");
  o.precision_override = "bf61";
  try {
    load_shots({dir / "a.yaml"}, o);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bf16"), std::string::npos) << e.what();
  }

  // A bad value names file:line and the key.
  write_file(dir / "c.yaml", "id: c\npreset: hd\nduration: 1\nprompt: x\nprecision: half\n");
  try {
    load_shots({dir / "c.yaml"}, LoadOptions{.out_root = dir / "out"});
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("c.yaml:5"), std::string::npos) << m;
    EXPECT_NE(m.find("precision"), std::string::npos) << m;
    EXPECT_NE(m.find("fp16"), std::string::npos) << m;  // lists the choices
  }
}

TEST(Shot, SymlinkOutOfTheOutputRootIsRefused) {
  const fs::path dir = test::scratch_dir("shot_symlink");
  fs::create_directories(dir / "out");
  fs::create_directories(dir / "elsewhere");
  fs::create_directory_symlink(dir / "elsewhere", dir / "out" / "link");
  write_file(dir / "a.yaml", "id: a\nduration: 1\nprompt: x\noutput: link/a.mp4\n");
  EXPECT_EQ(error_of({dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"}),
            (dir / "a.yaml").string() + ":4:9: output: expected a path inside the output root (" +
                (dir / "out").string() + "), got 'link/a.mp4' (a symlink leads to " +
                (dir / "elsewhere/a.mp4").string() + ")");
  // an absolute path inside the root is fine
  write_file(dir / "b.yaml", "id: b\nduration: 1\nprompt: x\noutput: " + (dir / "out/sub/b.mp4").string() + "\n");
  EXPECT_EQ(load_shots({dir / "b.yaml"}, LoadOptions{.out_root = dir / "out"}).shots[0].output, dir / "out/sub/b.mp4");
}

TEST(Shot, DuplicateIdsAcrossFilesNameBothPlaces) {
  const fs::path dir = test::scratch_dir("shot_dup");
  write_file(dir / "one.yaml", "id: intro\nduration: 1\nprompt: x\n");
  write_file(dir / "two.yaml",
        "version: 1\nshots:\n  - id: other\n    duration: 1\n    prompt: y\n  - id: intro\n    duration: 2\n    "
        "prompt: z\n");
  const std::string msg = error_of({dir / "one.yaml", dir / "two.yaml"}, LoadOptions{.out_root = dir / "out"});
  EXPECT_EQ(replace_all(msg, dir.string() + "/", ""),
            "two.yaml:6:9: shots[1].id: expected a unique shot id, got 'intro' (already used at one.yaml:1:5)");
}

TEST(Shot, DuplicateOutputsAreRefused) {
  const fs::path dir = test::scratch_dir("shot_dup_out");
  write_file(dir / "a.yaml",
        "version: 1\ndefaults: {duration: 1, prompt: x, output: same.mp4}\nshots:\n  - id: a\n  - id: b\n");
  EXPECT_EQ(replace_all(error_of({dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"}), dir.string() + "/", ""),
            "a.yaml:2:44: defaults.output: expected an output file no other shot writes, got 'out/same.mp4' (also "
            "written by shot 'a' at a.yaml:2:44)");
}

TEST(Shot, ErrorsOfSeveralFilesComeTogetherInFileOrder) {
  const fs::path dir = test::scratch_dir("shot_multi");
  write_file(dir / "z.yaml", "id: z\nduration: -1\nprompt: x\n");
  write_file(dir / "a.yaml", "id: a\nduration: 1\nprompt: x\nsampler: {steps: 0}\nfps: 0\n");
  EXPECT_EQ(
      replace_all(error_of({dir / "z.yaml", dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"}),
                  dir.string() + "/", ""),
      "z.yaml:2:11: duration: expected a positive duration in seconds (4, 2.5 or 2.5s), got -1\n"
      "a.yaml:4:18: sampler.steps: expected an integer from 1 to 1000, got 0\n"
      "a.yaml:5:6: fps: expected a frame rate (30, 29.97 or 30000/1001) up to 240, got 0");
  EXPECT_EQ(error_of({dir / "missing.yaml"}, LoadOptions{.out_root = dir / "out"}),
            (dir / "missing.yaml").string() + ": expected a readable YAML file, got no such file");
}

TEST(Shot, PresetOverrideWins) {
  LoadOptions o = LoadOptions{.out_root = test::scratch_dir("shot_override")};
  o.preset_override = "square";
  const auto list = load_shots({examples() / "shotlist.yaml"}, o);
  for (const auto& s : list.shots) EXPECT_EQ(s.preset.name, "square");
  EXPECT_EQ(list.shots[0].fps, (Rational{30, 1}));  // from the override preset
  EXPECT_EQ(list.shots[2].fps, (Rational{24, 1}));  // the shot's own fps still wins
  o.preset_override = "sqare";
  EXPECT_EQ(error_of({examples() / "shotlist.yaml"}, o),
            "--preset: expected a preset name (see clipgen presets), got 'sqare' (did you mean 'square'?)");
}

TEST(Shot, UserPresetFolderIsUsed) {
  const fs::path dir = test::scratch_dir("shot_user_preset");
  write_file(dir / "presets/clip720.yaml",
        "name: clip720\nraster: {width: 1280, height: 720, fps: 25}\nvideo: {codec: libx264}\ncontainer: mkv\n");
  write_file(dir / "a.yaml", "id: a\npreset: clip720\nduration: 2\nprompt: x\n");
  LoadOptions o = LoadOptions{.out_root = dir / "out"};
  o.preset_dirs = {dir / "presets"};
  const Shot s = load_shots({dir / "a.yaml"}, o).shots[0];
  EXPECT_EQ(s.preset.width, 1280);
  EXPECT_EQ(s.frames, 50);
  EXPECT_EQ(s.output.filename(), "a.mkv");
}

TEST(ShotWarnings, BuiltinModelNamesTheWordsItDoesNotKnow) {
  const fs::path dir = test::scratch_dir("shot_warn_vocab");
  write_file(dir / "a.yaml",
             "id: a\nduration: 2\nprompt: a red ball over snow, cinematic 35mm\nkeyframes:\n  - at: 0\n  - at: 1\n"
             "    prompt: a dragon over snow\n");
  auto list = load_shots({dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"});
  ASSERT_EQ(list.warnings.size(), 1u);
  EXPECT_EQ(list.warnings[0], (dir / "a.yaml").string() +
                                  ":3:9: warning: prompt: the built-in model does not know 'cinematic', '35mm', 'dragon': "
                                  "it draws skies, grounds and a ball, box or kite in eight colours "
                                  "(docs/builtin-model.md); name Stable Diffusion weights as models.keyframe for "
                                  "anything else");
  // Words of the vocabulary only: no warning; the procedural stand-in: no warning.
  write_file(dir / "b.yaml", "id: b\nduration: 2\nprompt: at night, a blue kite above the ocean with the moon\n");
  EXPECT_TRUE(load_shots({dir / "b.yaml"}, LoadOptions{.out_root = dir / "out"}).warnings.empty());
  write_file(dir / "c.yaml", "id: c\nduration: 2\nprompt: a dragon\nmodels: {keyframe: procedural}\n");
  list = load_shots({dir / "c.yaml"}, LoadOptions{.out_root = dir / "out"});
  EXPECT_TRUE(list.warnings.empty());
  EXPECT_EQ(list.shots[0].keyframe_model.kind, ModelRef::Kind::Procedural);
  // models.temporal: none
  write_file(dir / "d.yaml", "id: d\nduration: 2\nprompt: a red box\nmodels: {temporal: none}\n");
  EXPECT_EQ(load_shots({dir / "d.yaml"}, LoadOptions{.out_root = dir / "out"}).shots[0].temporal_model.kind,
            ModelRef::Kind::None);
  // 'none' is no keyframe model, 'procedural' no temporal one.
  write_file(dir / "e.yaml", "id: e\nduration: 2\nprompt: a red box\nmodels: {keyframe: none, temporal: procedural}\n");
  const auto err = test::error_message<clipgen::ConfigError>([&] { load_shots({dir / "e.yaml"}, LoadOptions{.out_root = dir / "out"}); });
  EXPECT_NE(err.find("models.keyframe: expected 'builtin', 'procedural'"), std::string::npos) << err;
  EXPECT_NE(err.find("models.temporal: expected 'builtin', 'none'"), std::string::npos) << err;
}

TEST(ShotWarnings, LongerThanPresetMaximum) {
  const fs::path dir = test::scratch_dir("shot_warn_long");
  write_file(dir / "a.yaml", "id: a\npreset: youtube-shorts\nduration: 200\nprompt: a red ball\n");
  const auto list = load_shots({dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"});
  ASSERT_EQ(list.warnings.size(), 1u);
  EXPECT_EQ(list.warnings[0],
            (dir / "a.yaml").string() +
                ":3:11: warning: duration: 200s is longer than preset 'youtube-shorts' allows (180s)");
}

TEST(ShotWarnings, TitleOnAPlatformWithUiZones) {
  const fs::path dir = test::scratch_dir("shot_warn_title");
  write_file(dir / "a.yaml", "id: a\npreset: instagram-reels\nduration: 2\nprompt: a red ball\ntitle: Hello\n");
  const auto list = load_shots({dir / "a.yaml"}, LoadOptions{.out_root = dir / "out"});
  ASSERT_EQ(list.warnings.size(), 1u);
  // Reels: UI over 14% top (269 px of 1920), 35% bottom (672 px), 6% sides (65 px of 1080).
  EXPECT_EQ(list.warnings[0], (dir / "a.yaml").string() +
                                  ":5:8: warning: title: preset 'instagram-reels' shows platform UI over the top 14%, "
                                  "bottom 35%, left 6% and right 6% of the frame; place the title inside x 65..1015, "
                                  "y 269..1248 of 1080x1920");
  // no warning without a title, nor for a preset without UI zones
  write_file(dir / "b.yaml", "id: b\npreset: hd\nduration: 2\nprompt: a red ball\ntitle: Hello\n");
  EXPECT_TRUE(load_shots({dir / "b.yaml"}, LoadOptions{.out_root = dir / "out"}).warnings.empty());
}
