#pragma once
/// \file hook_point.hpp
/// Names of the places in a GPT-2 forward pass where an activation can be read or
/// replaced, spelled as TransformerLens spells them.
///
/// Every hook holds a row-major matrix with one row per token, row b * seq + t:
///   hook_embed, hook_pos_embed                       [batch*seq, n_embd]  (wte and wpe rows)
///   blocks.L.hook_resid_pre                          [batch*seq, n_embd]
///   blocks.L.ln1.hook_normalized                     [batch*seq, n_embd]  (after gain and bias)
///   blocks.L.attn.hook_q / hook_k / hook_v           [batch*seq, n_embd]  (head h in columns
///                                                     h*d_head ..; TransformerLens'
///                                                     [batch, pos, head, d_head] flattened)
///   blocks.L.attn.hook_attn_scores                   [batch*n_head*seq, seq]: row
///                                                     (b*n_head + h)*seq + query, column key;
///                                                     scaled by 1/sqrt(d_head), -inf above
///                                                     the diagonal
///   blocks.L.attn.hook_pattern                       same layout, softmax of the scores
///   blocks.L.attn.hook_z                             [batch*seq, n_embd]  (heads' outputs
///                                                     before c_proj)
///   blocks.L.hook_attn_out                           [batch*seq, n_embd]
///   blocks.L.hook_resid_mid                          [batch*seq, n_embd]
///   blocks.L.ln2.hook_normalized                     [batch*seq, n_embd]
///   blocks.L.mlp.hook_pre / hook_post                [batch*seq, mlp_width] (before / after GELU)
///   blocks.L.hook_mlp_out                            [batch*seq, n_embd]
///   blocks.L.hook_resid_post                         [batch*seq, n_embd]
///   ln_final.hook_normalized (alias: ln_final)       [batch*seq, n_embd]
///
///   HookPoint::parse(name)          config_error "unknown hook point 'x' (did you mean 'y'?)"
///   HookPoint::parse(name, n_layer) also rejects a layer outside [0, n_layer), with a hint
///   name(), forward_order()         canonical name; position in the forward pass

#include "../core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace sae::models {

/// The kind of a hook point, in forward-pass order within its stage.
enum class HookSite {
    embed,
    pos_embed,
    resid_pre,
    ln1_normalized,
    attn_q,
    attn_k,
    attn_v,
    attn_scores,
    attn_pattern,
    attn_z,
    attn_out,
    resid_mid,
    ln2_normalized,
    mlp_pre,
    mlp_post,
    mlp_out,
    resid_post,
    ln_final,
};

namespace detail {

struct SiteName {
    HookSite site;
    const char* suffix;  ///< after "blocks.L." for block sites, the whole name otherwise
    bool in_block;
};

inline const std::vector<SiteName>& hook_site_names() {
    static const std::vector<SiteName> names = {
        {HookSite::embed, "hook_embed", false},
        {HookSite::pos_embed, "hook_pos_embed", false},
        {HookSite::resid_pre, "hook_resid_pre", true},
        {HookSite::ln1_normalized, "ln1.hook_normalized", true},
        {HookSite::attn_q, "attn.hook_q", true},
        {HookSite::attn_k, "attn.hook_k", true},
        {HookSite::attn_v, "attn.hook_v", true},
        {HookSite::attn_scores, "attn.hook_attn_scores", true},
        {HookSite::attn_pattern, "attn.hook_pattern", true},
        {HookSite::attn_z, "attn.hook_z", true},
        {HookSite::attn_out, "hook_attn_out", true},
        {HookSite::resid_mid, "hook_resid_mid", true},
        {HookSite::ln2_normalized, "ln2.hook_normalized", true},
        {HookSite::mlp_pre, "mlp.hook_pre", true},
        {HookSite::mlp_post, "mlp.hook_post", true},
        {HookSite::mlp_out, "hook_mlp_out", true},
        {HookSite::resid_post, "hook_resid_post", true},
        {HookSite::ln_final, "ln_final.hook_normalized", false},
    };
    return names;
}

/// Levenshtein distance, for "did you mean" hints.
inline std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

/// A non-negative decimal integer without sign or leading zeros (except "0"); -1 otherwise.
inline int parse_layer_index(const std::string& text) {
    if (text.empty() || text.size() > 9 || (text.size() > 1 && text[0] == '0')) return -1;
    int value = 0;
    for (char ch : text) {
        if (ch < '0' || ch > '9') return -1;
        value = value * 10 + (ch - '0');
    }
    return value;
}

}  // namespace detail

/// A place in the forward pass: a site, and the block it belongs to (-1 for hook_embed,
/// hook_pos_embed and ln_final.hook_normalized).
struct HookPoint {
    HookSite site = HookSite::resid_pre;
    int layer = 0;

    /// The TransformerLens name, e.g. "blocks.3.hook_resid_post".
    std::string name() const {
        for (const detail::SiteName& s : detail::hook_site_names()) {
            if (s.site == site) return s.in_block ? "blocks." + std::to_string(layer) + "." + s.suffix : s.suffix;
        }
        return "?";
    }

    /// False for hook_embed, hook_pos_embed and ln_final.hook_normalized (their `layer` is ignored).
    bool in_block() const { return site != HookSite::embed && site != HookSite::pos_embed && site != HookSite::ln_final; }

    /// (stage, site): a point with a smaller key is computed earlier in the forward pass.
    std::pair<int, int> forward_order() const {
        const int stage = site == HookSite::ln_final ? std::numeric_limits<int>::max() : in_block() ? layer : -1;
        return {stage, static_cast<int>(site)};
    }

    friend bool operator==(const HookPoint& a, const HookPoint& b) {
        return a.site == b.site && (!a.in_block() || a.layer == b.layer);
    }
    friend bool operator!=(const HookPoint& a, const HookPoint& b) { return !(a == b); }
    friend bool operator<(const HookPoint& a, const HookPoint& b) { return a.forward_order() < b.forward_order(); }

    /// Parses a name; config_error for an unknown one, with the nearest valid name.
    static HookPoint parse(const std::string& name) {
        if (name == "ln_final") return HookPoint{HookSite::ln_final, -1};
        const std::string blocks = "blocks.";
        int layer = -1;
        std::string suffix = name;
        if (name.compare(0, blocks.size(), blocks) == 0) {
            const std::size_t dot = name.find('.', blocks.size());
            if (dot != std::string::npos) {
                layer = detail::parse_layer_index(name.substr(blocks.size(), dot - blocks.size()));
                suffix = name.substr(dot + 1);
            }
        }
        for (const detail::SiteName& s : detail::hook_site_names()) {
            if (s.in_block && layer >= 0 && suffix == s.suffix) return HookPoint{s.site, layer};
            if (!s.in_block && name == s.suffix) return HookPoint{s.site, -1};
        }
        throw config_error("unknown hook point '" + name + "'" + suggestion(name, std::max(layer, 0)));
    }

    /// Parses a name and checks its layer against a model with n_layer blocks.
    static HookPoint parse(const std::string& name, int n_layer) {
        HookPoint point = parse(name);
        point.check_layer(n_layer);
        return point;
    }

    /// config_error when the point's block does not exist in a model with n_layer blocks.
    void check_layer(int n_layer) const {
        if (!in_block() || (layer >= 0 && layer < n_layer)) return;
        HookPoint nearest = *this;
        nearest.layer = n_layer - 1;
        throw config_error("hook point '" + name() + "': layer " + std::to_string(layer) +
                           " is out of range (the model has " + std::to_string(n_layer) + " blocks, 0.." +
                           std::to_string(n_layer - 1) + ")" +
                           (n_layer > 0 ? "; did you mean '" + nearest.name() + "'?" : ""));
    }

private:
    static std::string suggestion(const std::string& name, int layer) {
        std::string best;
        std::size_t best_distance = std::numeric_limits<std::size_t>::max();
        for (const detail::SiteName& s : detail::hook_site_names()) {
            const std::string candidate = s.in_block ? "blocks." + std::to_string(layer) + "." + s.suffix : s.suffix;
            const std::size_t d = detail::edit_distance(name, candidate);
            if (d < best_distance) {
                best_distance = d;
                best = candidate;
            }
        }
        if (best_distance > std::max<std::size_t>(3, name.size() / 3)) return "";
        return " (did you mean '" + best + "'?)";
    }
};

}  // namespace sae::models
