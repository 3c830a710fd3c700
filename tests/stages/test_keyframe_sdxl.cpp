// stages/keyframe, SDXL path, end to end with a tiny SDXL pipeline put together from the fixtures:
// unet2d/sdxl + single_file/components/text_encoder_sdxl (CLIPTextModel) and text_encoder_2_sdxl
// (CLIPTextModelWithProjection) + vae/autoencoder_kl + the CLIP tokenizers (tokenizer_sd1 and the pad-"!"
// tokenizer_sd2, as SDXL's tokenizer / tokenizer_2) + the SDXL Euler scheduler config.
//
// The fixtures do not fit together as they are: the two SDXL text encoders have a 128-token vocabulary
// (README k: "for weight loading only"), so real token ids (BOS 49406, EOS 49407, ...) index past their
// embedding tables. The test keeps every fixture weight and appends seeded random rows to each
// token_embedding (vocab 128 → 49408); all other sizes fit (checked below). No diffusers reference output
// exists for this pipeline, so everything is checked against direct calls of the model classes, with the
// conditioning built as diffusers' StableDiffusionXLPipeline (0.27.2) builds it:
//   prompt_embeds = cat(text_encoder(ids_1).hidden_states[-2], text_encoder_2(ids_2).hidden_states[-2], -1)
//   pooled        = text_encoder_2(ids_2).text_embeds
//   add_time_ids  = [orig_h, orig_w, crop_top, crop_left, target_h, target_w] = [H, W, 0, 0, H, W]
//   negative: zeros (embeds and pooled) when no negative prompt is set (unset = diffusers' None) and the
//   pipeline's force_zeros_for_empty_prompt is true, else the encoding of the negative prompt ("" when
//   unset), always from the penultimate layer, clip-skip or not.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "models/io/safetensors.h"
#include "stages/keyframe.h"
#include "tests/test_util.h"
#include "tests/tiny_pipelines.h"

using namespace clipgen;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json(const fs::path& p) { return json::parse(std::ifstream(p)); }

fs::path tiny_sdxl(const std::string& name, bool force_zeros = true) {
  return test::tiny_sdxl(test::scratch_dir(name), force_zeros);
}

// The components, loaded by the model classes directly from the folder.
struct Direct {
  CLIPTokenizer tok1, tok2;
  CLIPTextModel te1;
  CLIPTextModelWithProjection te2;
  UNet2DConditionModel unet;
  AutoencoderKL vae;
  explicit Direct(const fs::path& dir)
      : tok1(CLIPTokenizer::from_folder(test::fixture_dir("clip_tokenizer/tokenizer_sd1"))),
        tok2(CLIPTokenizer::from_folder(test::fixture_dir("clip_tokenizer/tokenizer_sd2"))),
        te1(load_clip_text_model(dir / "text_encoder")),
        te2(load_clip_text_model_with_projection(dir / "text_encoder_2")),
        unet(load_unet_2d_condition(test::fixture_dir("unet2d/sdxl"))),
        vae(load_autoencoder_kl(test::fixture_dir("vae/autoencoder_kl"))) {}

  // diffusers' encode_prompt for one text; `layer_from_end` 2 = penultimate (hidden_states[-2]).
  std::pair<at::Tensor, at::Tensor> encode(const std::string& text, int layer_from_end = 2) {
    CLIPTextForwardOptions o;
    o.output_hidden_states = true;
    auto ids1 = torch::tensor(tok1.encode_padded(text, 77).input_ids).unsqueeze(0);
    auto ids2 = torch::tensor(tok2.encode_padded(text, 77).input_ids).unsqueeze(0);
    auto r1 = te1->forward(ids1, o);
    auto r2 = te2->forward(ids2, o);
    const auto& h1 = r1.hidden_states[r1.hidden_states.size() - static_cast<size_t>(layer_from_end)];
    const auto& h2 = r2.hidden_states[r2.hidden_states.size() - static_cast<size_t>(layer_from_end)];
    return {torch::cat({h1, h2}, -1), r2.text_embeds};
  }
};

using Trace = std::map<std::string, at::Tensor>;

stages::KeyframeResult run(stages::SDModel& m, const stages::KeyframeRequest& r, Trace& trace) {
  stages::KeyframeCallbacks cb;
  cb.trace = [&](const std::string& name, const at::Tensor& v) { trace[name] = v.clone(); };
  return stages::generate_keyframe(m, r, cb);
}

stages::KeyframeRequest request() {
  stages::KeyframeRequest r;
  r.prompt = "a lighthouse on a rocky coast at dusk";
  r.negative_prompt = "blurry, low quality";
  r.width = 64;  // not square: a swapped (w, h) in add_time_ids shows
  r.height = 48;
  r.steps = 3;
  r.guidance = 5.0;
  r.sampler = "";  // the pipeline's own EulerDiscreteScheduler (leading)
  r.seed = 2024;
  return r;
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }
double tol(const at::Tensor& ref) { return 1e-5 + 1e-5 * max_abs(ref); }

}  // namespace

TEST(KeyframeSDXL, FixturesFitTogether) {
  auto comp = test::fixture_dir("single_file/components");
  auto te1 = read_json(comp / "text_encoder_sdxl/config.json");
  auto te2 = read_json(comp / "text_encoder_2_sdxl/config.json");
  auto unet = read_json(test::fixture_dir("unet2d/sdxl/config.json"));
  // Hidden sizes concatenate to the UNet's cross-attention width.
  EXPECT_EQ(te1["hidden_size"].get<int>() + te2["hidden_size"].get<int>(), unet["cross_attention_dim"].get<int>());
  // pooled projection + 6 add_time_ids embedded with addition_time_embed_dim each.
  EXPECT_EQ(unet["addition_embed_type"], "text_time");
  EXPECT_EQ(te2["projection_dim"].get<int>() + 6 * unet["addition_time_embed_dim"].get<int>(),
            unet["projection_class_embeddings_input_dim"].get<int>());
  // ...but not the vocabulary: this is why the test widens the token embeddings.
  EXPECT_EQ(te1["vocab_size"].get<int>(), 128);
  EXPECT_EQ(te2["vocab_size"].get<int>(), 128);
  auto tok = CLIPTokenizer::from_folder(test::fixture_dir("clip_tokenizer/tokenizer_sd1"));
  auto ids = tok.encode_padded("a photo", 77).input_ids;
  EXPECT_GE(*std::max_element(ids.begin(), ids.end()), 128);
}

TEST(KeyframeSDXL, GeneratesAsTheModelClassesDoWrittenOut) {
  c10::InferenceMode guard;
  auto dir = tiny_sdxl("keyframe_sdxl");
  auto m = stages::load_sd_pipeline(dir);
  ASSERT_EQ(m.family, stages::SDFamily::SDXL);
  EXPECT_TRUE(m.force_zeros_for_empty_prompt);
  Direct d(dir);
  const auto r = request();
  Trace tr;
  auto got = run(m, r, tr);

  // Conditioning.
  auto [pos, pos_pooled] = d.encode(r.prompt);
  auto [neg, neg_pooled] = d.encode(*r.negative_prompt);
  EXPECT_EQ(pos.sizes(), (std::vector<int64_t>{1, 77, 64}));
  EXPECT_EQ(pos_pooled.sizes(), (std::vector<int64_t>{1, 16}));
  ASSERT_TRUE(tr.count("prompt_embeds") && tr.count("negative_prompt_embeds"));
  EXPECT_LE(max_abs(tr["prompt_embeds"] - pos), tol(pos));
  EXPECT_LE(max_abs(tr["negative_prompt_embeds"] - neg), tol(neg));

  // The whole loop written out (EulerDiscreteScheduler, leading, epsilon): t_i = (n−1−i)·(1000 // n) + 1,
  // σ(t) = sqrt((1 − ᾱ_t)/ᾱ_t) from diffusers' float32 ᾱ (scheduler fixture), init_noise_sigma = sqrt(σ_0² + 1).
  const auto acp =
      io::load_safetensors(test::fixture_dir("schedulers/euler/steps_4/outputs.safetensors")).at("alphas_cumprod");
  std::vector<int64_t> ts = {667, 334, 1};  // leading, steps_offset 1: (n−1−i)·(1000 // 3) + 1
  std::vector<float> sig;
  for (auto t : ts) {
    const double a = acp[t].item<float>();
    sig.push_back(static_cast<float>(std::sqrt((1 - a) / a)));
  }
  sig.push_back(0.f);
  auto context = torch::cat({neg, pos});
  auto pooled = torch::cat({neg_pooled, pos_pooled});
  auto time_ids = torch::tensor({48.f, 64.f, 0.f, 0.f, 48.f, 64.f}).view({1, 6}).repeat({2, 1});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(r.seed);
  auto x = torch::randn({1, 4, 6, 8}, gen) * std::sqrt(sig[0] * sig[0] + 1.f);  // init_noise_sigma (leading)
  for (size_t i = 0; i < ts.size(); ++i) {
    auto in = torch::cat({x, x}) / std::sqrt(sig[i] * sig[i] + 1.f);
    auto t = torch::tensor(static_cast<float>(ts[i]));
    auto out = d.unet->forward(in, t, context, pooled, time_ids);
    const std::string k = std::to_string(i);
    ASSERT_TRUE(tr.count("unet_output_" + k));
    EXPECT_EQ(std::llround(tr["unet_timestep_" + k].item<double>()), ts[i]);
    EXPECT_LE(max_abs(tr["unet_input_" + k] - in), tol(in)) << k;
    EXPECT_LE(max_abs(tr["unet_output_" + k] - out), tol(out)) << k;
    if (i == 0) {
      // The comparison can tell: (w, h) swapped in add_time_ids, or no pooled embedding, changes the output.
      auto swapped = torch::tensor({64.f, 48.f, 0.f, 0.f, 64.f, 48.f}).view({1, 6}).repeat({2, 1});
      EXPECT_GT(max_abs(d.unet->forward(in, t, context, pooled, swapped) - out), 100 * tol(out));
      EXPECT_GT(max_abs(d.unet->forward(in, t, context, torch::zeros_like(pooled), time_ids) - out), 100 * tol(out));
    }
    auto parts = out.chunk(2);
    auto eps = parts[0] + r.guidance * (parts[1] - parts[0]);
    x = x + eps * (sig[i + 1] - sig[i]);
  }
  EXPECT_LE(max_abs(got.latents - x), tol(x));
  auto image = (d.vae->decode(x / d.vae->scaling_factor()) / 2 + 0.5).clamp(0, 1);
  EXPECT_EQ(got.image.sizes(), (std::vector<int64_t>{1, 3, 48, 64}));
  EXPECT_LE(max_abs(got.image - image), 1e-5);
}

TEST(KeyframeSDXL, NoNegativePromptIsZerosWhenForced) {
  // diffusers: zero_out_negative_prompt = negative_prompt is None and force_zeros_for_empty_prompt.
  c10::InferenceMode guard;
  auto r = request();
  r.negative_prompt.reset();
  r.steps = 1;
  auto forced = tiny_sdxl("keyframe_sdxl_zeros", true);
  {
    auto m = stages::load_sd_pipeline(forced);
    Direct d(forced);
    Trace tr;
    run(m, r, tr);
    EXPECT_EQ(max_abs(tr["negative_prompt_embeds"]), 0.0);
    // The UNet's unconditional row got zero embeddings and a zero pooled vector.
    auto [pos, pos_pooled] = d.encode(r.prompt);
    auto in = tr["unet_input_0"];
    auto time_ids = torch::tensor({48.f, 64.f, 0.f, 0.f, 48.f, 64.f}).view({1, 6}).repeat({2, 1});
    auto out = d.unet->forward(in, tr["unet_timestep_0"].reshape({}), torch::cat({torch::zeros_like(pos), pos}),
                               torch::cat({torch::zeros_like(pos_pooled), pos_pooled}), time_ids);
    EXPECT_LE(max_abs(tr["unet_output_0"] - out), tol(out));
  }
  {
    // An explicit "" is a prompt like any other, even when the model forces zeros for none.
    auto m = stages::load_sd_pipeline(forced);
    Direct d(forced);
    r.negative_prompt = "";
    Trace tr;
    run(m, r, tr);
    auto [empty, empty_pooled] = d.encode("");
    EXPECT_GT(max_abs(empty), 0.1);
    EXPECT_LE(max_abs(tr["negative_prompt_embeds"] - empty), tol(empty));
    r.negative_prompt.reset();
  }
  {
    // force_zeros_for_empty_prompt false (model_index.json): no negative prompt encodes "".
    auto dir = tiny_sdxl("keyframe_sdxl_nozeros", false);
    auto m = stages::load_sd_pipeline(dir);
    EXPECT_FALSE(m.force_zeros_for_empty_prompt);
    Direct d(dir);
    Trace tr;
    run(m, r, tr);
    auto [empty, empty_pooled] = d.encode("");
    EXPECT_LE(max_abs(tr["negative_prompt_embeds"] - empty), tol(empty));
  }
}

TEST(KeyframeSDXL, ClipSkipMovesThePromptNotTheNegative) {
  // diffusers SDXL with clip_skip c: prompt from hidden_states[-(c + 2)], negative still from [-2].
  // clipgen's clip_skip 2 (A1111 convention) = diffusers' clip_skip 1.
  c10::InferenceMode guard;
  auto dir = tiny_sdxl("keyframe_sdxl_clip_skip");
  auto m = stages::load_sd_pipeline(dir);
  Direct d(dir);
  auto r = request();
  r.steps = 1;
  r.clip_skip = 2;
  Trace tr;
  run(m, r, tr);
  auto [pos3, p3] = d.encode(r.prompt, 3);
  auto [pos2, p2] = d.encode(r.prompt, 2);
  auto [neg, np] = d.encode(*r.negative_prompt, 2);
  EXPECT_LE(max_abs(tr["prompt_embeds"] - pos3), tol(pos3));
  EXPECT_GT(max_abs(tr["prompt_embeds"] - pos2), 1e-3);
  EXPECT_LE(max_abs(tr["negative_prompt_embeds"] - neg), tol(neg));
}

TEST(KeyframeSDXL, Img2ImgAsDiffusersWritesIt) {
  // StableDiffusionXLImg2ImgPipeline (base: requires_aesthetics_score false) written out: the same prompt
  // conditioning and add_time_ids (H, W, 0, 0, H, W) as txt2img; int(steps · strength) steps from
  // timesteps[steps − that]; init = vae.encode(image).sample(generator) · scaling (the generator's first
  // draw), noise its second, latents = init + σ(t_start) · noise (Euler's add_noise).
  c10::InferenceMode guard;
  auto dir = tiny_sdxl("keyframe_sdxl_img2img");
  auto m = stages::load_sd_pipeline(dir);
  Direct d(dir);
  auto r = request();
  r.steps = 4;
  r.strength = 0.5;
  auto yy = torch::linspace(-1, 1, 48).view({1, 1, 48, 1}).expand({1, 1, 48, 64});
  auto xx = torch::linspace(-1, 1, 64).view({1, 1, 1, 64}).expand({1, 1, 48, 64});
  r.init_image = torch::cat({torch::sin(3 * xx) * 0.8, torch::cos(2 * yy) * 0.7, xx * yy * 0.9}, 1).contiguous();
  Trace tr;
  auto got = run(m, r, tr);

  const auto acp =
      io::load_safetensors(test::fixture_dir("schedulers/euler/steps_4/outputs.safetensors")).at("alphas_cumprod");
  const std::vector<int64_t> ts = {751, 501, 251, 1};  // leading, steps_offset 1: (n−1−i)·(1000 // 4) + 1
  std::vector<float> sig;
  for (auto t : ts) {
    const double a = acp[t].item<float>();
    sig.push_back(static_cast<float>(std::sqrt((1 - a) / a)));
  }
  sig.push_back(0.f);
  const size_t t_start = 2;  // 4 − int(4 · 0.5)
  auto [pos, pos_pooled] = d.encode(r.prompt);
  auto [neg, neg_pooled] = d.encode(*r.negative_prompt);
  auto context = torch::cat({neg, pos});
  auto pooled = torch::cat({neg_pooled, pos_pooled});
  auto time_ids = torch::tensor({48.f, 64.f, 0.f, 0.f, 48.f, 64.f}).view({1, 6}).repeat({2, 1});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(r.seed);
  auto post = d.vae->encode(*r.init_image);
  auto init = (post.mean + post.std * torch::randn(post.mean.sizes(), gen)) * d.vae->scaling_factor();
  auto x = init + torch::randn(init.sizes(), gen) * sig[t_start];
  for (size_t i = t_start; i < ts.size(); ++i) {
    const std::string k = std::to_string(i - t_start);
    ASSERT_TRUE(tr.count("unet_timestep_" + k)) << k;
    EXPECT_EQ(std::llround(tr["unet_timestep_" + k].item<double>()), ts[i]);
    auto in = torch::cat({x, x}) / std::sqrt(sig[i] * sig[i] + 1.f);
    auto out = d.unet->forward(in, torch::tensor(static_cast<float>(ts[i])), context, pooled, time_ids);
    auto parts = out.chunk(2);
    x = x + (parts[0] + r.guidance * (parts[1] - parts[0])) * (sig[i + 1] - sig[i]);
  }
  EXPECT_FALSE(tr.count("unet_timestep_2"));  // only two steps ran
  EXPECT_LE(max_abs(got.latents - x), tol(x));
  auto image = (d.vae->decode(x / d.vae->scaling_factor()) / 2 + 0.5).clamp(0, 1);
  EXPECT_LE(max_abs(got.image - image), 1e-5);
}

TEST(KeyframeSDXL, Bf16RunsBothEncodersAndTheUNetInBf16) {
  // precision: bf16 on SDXL: both text encoders, the pooled embedding and add_time_ids reach the UNet in
  // bf16; the result stays within the keyframe bound of docs/shot-schema.md#precision (7% latents).
  c10::InferenceMode guard;
  auto dir = tiny_sdxl("keyframe_sdxl_bf16");
  auto m32 = stages::load_sd_pipeline(dir);
  auto m16 = stages::load_sd_pipeline(dir);
  m16.to(torch::kCPU, torch::kBFloat16);
  EXPECT_EQ(m16.text_encoder_2->parameters().front().scalar_type(), torch::kBFloat16);
  const auto r = request();
  Trace ta, tb;
  auto a = run(m32, r, ta);
  auto b = run(m16, r, tb);
  EXPECT_EQ(tb["unet_output_0"].scalar_type(), torch::kBFloat16);
  const double lat = max_abs(b.latents - a.latents) / max_abs(a.latents);
  std::printf("SDXL bf16 vs fp32: final latents %.4f of max\n", lat);
  EXPECT_GT(lat, 0.0);
  EXPECT_LE(lat, 0.07);
}
