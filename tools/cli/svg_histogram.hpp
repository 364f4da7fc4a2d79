#pragma once
/// \file svg_histogram.hpp
/// The feature-density histogram of `sae eval` as a standalone SVG file (no plotting
/// library): bars over log10(firing rate), integer decades labelled, the number of
/// latents that never fired in the caption.

#include <sae/core/error.hpp>
#include <sae/io/svg_plot.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace sae::cli {

inline std::string density_histogram_svg(const std::vector<double>& log10_edges, const std::vector<std::int64_t>& counts,
                                         std::int64_t never_fired, const std::string& title) {
    if (log10_edges.size() != counts.size() + 1 || counts.empty()) {
        throw shape_error("density_histogram_svg: need bins + 1 edges for bins counts");
    }
    const double width = 640, height = 360, left = 60, right = 20, top = 40, bottom = 60;
    const double plot_w = width - left - right, plot_h = height - top - bottom;
    const double lo = log10_edges.front(), hi = log10_edges.back();
    const std::int64_t peak = std::max<std::int64_t>(1, *std::max_element(counts.begin(), counts.end()));
    const auto x_of = [&](double v) { return left + (v - lo) / (hi - lo) * plot_w; };
    const auto y_of = [&](double c) { return top + plot_h - c / static_cast<double>(peak) * plot_h; };
    char buffer[512];
    std::string svg;
    std::snprintf(buffer, sizeof buffer,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                  "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                  width, height, width, height);
    svg += buffer;
    const std::string escaped = svg_escape(title);
    std::snprintf(buffer, sizeof buffer, "<text x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">%s</text>\n",
                  width / 2, escaped.c_str());
    svg += buffer;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 0) continue;
        const double x0 = x_of(log10_edges[i]), x1 = x_of(log10_edges[i + 1]), y = y_of(static_cast<double>(counts[i]));
        std::snprintf(buffer, sizeof buffer,
                      "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#4a78b5\"><title>%lld</title></rect>\n",
                      x0, y, std::max(0.5, x1 - x0 - 0.5), top + plot_h - y, static_cast<long long>(counts[i]));
        svg += buffer;
    }
    std::snprintf(buffer, sizeof buffer,
                  "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n"
                  "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n",
                  left, top + plot_h, left + plot_w, top + plot_h, left, top, left, top + plot_h);
    svg += buffer;
    for (int decade = static_cast<int>(std::ceil(lo)); decade <= static_cast<int>(std::floor(hi)); ++decade) {
        std::snprintf(buffer, sizeof buffer,
                      "<text x=\"%.2f\" y=\"%.0f\" text-anchor=\"middle\">1e%d</text>\n", x_of(decade), top + plot_h + 16, decade);
        svg += buffer;
    }
    std::snprintf(buffer, sizeof buffer,
                  "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">firing rate (log scale); %lld latents never fired</text>\n"
                  "<text x=\"16\" y=\"%.0f\" transform=\"rotate(-90 16 %.0f)\" text-anchor=\"middle\">latents (max %lld)</text>\n"
                  "</svg>\n",
                  left + plot_w / 2, height - 16, static_cast<long long>(never_fired), top + plot_h / 2, top + plot_h / 2,
                  static_cast<long long>(peak));
    svg += buffer;
    return svg;
}

}  // namespace sae::cli
