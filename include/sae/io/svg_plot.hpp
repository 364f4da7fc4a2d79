#pragma once
/// \file svg_plot.hpp
/// Line plots as standalone SVG text (no plotting library): one or more series of
/// (x, y) points, axes with "nice" ticks (1, 2 or 5 times a power of ten), a legend,
/// a title and axis labels. Meant for examples and reports; write the text with
/// write_file_atomically.
///
///   svg_escape(text)        text safe inside SVG/XML character data and attributes
///                           (& < > " ' escaped).
///   svg_number(value)       a coordinate or tick label: fixed-point with at most
///                           `decimals` digits, trailing zeros dropped, "-0" as "0".
///   nice_ticks(lo, hi, n)   about n tick values covering [lo, hi].
///   LinePlot                title, x_label, y_label, width, height, log_y (a log10 y axis,
///                           ticks at 1, 2, 5 x 10^k; every y must then be > 0, else
///                           numeric_error from svg()); add(series); svg(). The legend
///                           sits right of the plot, as wide as its longest label.
///   PlotSeries              label, color (any SVG color), dashed, x, y (same length,
///                           finite; shape_error / numeric_error otherwise), markers.

#include "../core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace sae {

inline std::string svg_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

inline std::string svg_number(double value, int decimals = 2) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    std::string text = buffer;
    if (text.find('.') != std::string::npos) {
        while (text.back() == '0') text.pop_back();
        if (text.back() == '.') text.pop_back();
    }
    if (text == "-0") text = "0";
    return text;
}

/// About `count` round tick values spanning [lo, hi] (1, 2 or 5 times a power of ten apart).
inline std::vector<double> nice_ticks(double lo, double hi, int count = 6) {
    if (!(hi > lo)) return {lo};
    const double raw = (hi - lo) / std::max(1, count - 1);
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = magnitude;
    for (const double m : {1.0, 2.0, 5.0, 10.0}) {
        step = m * magnitude;
        if (step >= raw) break;
    }
    std::vector<double> ticks;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    return ticks;
}

struct PlotSeries {
    std::string label;
    std::string color = "#1f77b4";
    bool dashed = false;
    bool markers = false;
    double stroke_width = 1.5;
    std::vector<double> x;
    std::vector<double> y;
};

class LinePlot {
public:
    std::string title;
    std::string x_label;
    std::string y_label;
    double width = 720;
    double height = 400;
    bool log_y = false;

    LinePlot& add(PlotSeries series) {
        if (series.x.size() != series.y.size() || series.x.empty()) {
            throw shape_error("LinePlot: series '" + series.label + "' has " + std::to_string(series.x.size()) + " x and " +
                              std::to_string(series.y.size()) + " y values (need equal, non-zero counts)");
        }
        for (std::size_t i = 0; i < series.x.size(); ++i) {
            if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) {
                throw numeric_error("LinePlot: series '" + series.label + "' point " + std::to_string(i) + " is not finite");
            }
        }
        series_.push_back(std::move(series));
        return *this;
    }

    std::string svg() const {
        if (series_.empty()) throw shape_error("LinePlot: no series to draw");
        std::size_t longest = 0;
        for (const PlotSeries& series : series_) longest = std::max(longest, series.label.size());
        const double left = 70, top = 40, bottom = 55;
        const double right = 56 + 6.8 * static_cast<double>(longest);  // legend: sample line + label
        const double plot_w = std::max(100.0, width - left - right), plot_h = height - top - bottom;
        const auto y_value = [&](double y) {
            if (!log_y) return y;
            if (!(y > 0)) throw numeric_error("LinePlot: log_y needs y > 0, got " + std::to_string(y));
            return std::log10(y);
        };
        double x_lo = series_[0].x[0], x_hi = x_lo, y_lo = y_value(series_[0].y[0]), y_hi = y_lo;
        for (const PlotSeries& s : series_) {
            x_lo = std::min(x_lo, *std::min_element(s.x.begin(), s.x.end()));
            x_hi = std::max(x_hi, *std::max_element(s.x.begin(), s.x.end()));
            for (const double y : s.y) {
                y_lo = std::min(y_lo, y_value(y));
                y_hi = std::max(y_hi, y_value(y));
            }
        }
        if (x_hi == x_lo) x_hi = x_lo + 1;
        if (y_hi == y_lo) y_hi = y_lo + 1;
        const double y_margin = 0.05 * (y_hi - y_lo);
        y_lo -= y_margin;
        y_hi += y_margin;
        const auto px = [&](double v) { return left + (v - x_lo) / (x_hi - x_lo) * plot_w; };
        const auto py = [&](double v) { return top + plot_h - (y_value(v) - y_lo) / (y_hi - y_lo) * plot_h; };
        // y ticks as data values: linear "nice" ticks, or 1, 2, 5 x 10^k on a log axis.
        std::vector<double> y_ticks;
        if (log_y) {
            for (int decade = static_cast<int>(std::floor(y_lo)); decade <= static_cast<int>(std::ceil(y_hi)); ++decade) {
                for (const double m : {1.0, 2.0, 5.0}) {
                    const double v = m * std::pow(10.0, decade);
                    if (std::log10(v) >= y_lo && std::log10(v) <= y_hi) y_ticks.push_back(v);
                }
            }
        } else {
            y_ticks = nice_ticks(y_lo, y_hi);
        }

        std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + svg_number(width) + "\" height=\"" +
                          svg_number(height) + "\" viewBox=\"0 0 " + svg_number(width) + " " + svg_number(height) +
                          "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
        out += "<text x=\"" + svg_number(left + plot_w / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" +
               svg_escape(title) + "</text>\n";
        // Grid, ticks and tick labels.
        for (const double t : nice_ticks(x_lo, x_hi)) {
            const std::string x = svg_number(px(t));
            out += "<line x1=\"" + x + "\" y1=\"" + svg_number(top) + "\" x2=\"" + x + "\" y2=\"" + svg_number(top + plot_h) +
                   "\" stroke=\"#e0e0e0\"/>\n<text x=\"" + x + "\" y=\"" + svg_number(top + plot_h + 16) +
                   "\" text-anchor=\"middle\">" + svg_number(t, 3) + "</text>\n";
        }
        for (const double t : y_ticks) {
            const std::string y = svg_number(py(t));
            out += "<line x1=\"" + svg_number(left) + "\" y1=\"" + y + "\" x2=\"" + svg_number(left + plot_w) + "\" y2=\"" + y +
                   "\" stroke=\"#e0e0e0\"/>\n<text x=\"" + svg_number(left - 6) + "\" y=\"" + svg_number(py(t) + 4) +
                   "\" text-anchor=\"end\">" + svg_number(t, log_y ? 6 : 3) + "</text>\n";
        }
        out += "<rect x=\"" + svg_number(left) + "\" y=\"" + svg_number(top) + "\" width=\"" + svg_number(plot_w) +
               "\" height=\"" + svg_number(plot_h) + "\" fill=\"none\" stroke=\"black\"/>\n";
        out += "<text x=\"" + svg_number(left + plot_w / 2) + "\" y=\"" + svg_number(height - 14) +
               "\" text-anchor=\"middle\">" + svg_escape(x_label) + "</text>\n";
        out += "<text x=\"18\" y=\"" + svg_number(top + plot_h / 2) + "\" transform=\"rotate(-90 18 " +
               svg_number(top + plot_h / 2) + ")\" text-anchor=\"middle\">" + svg_escape(y_label) + "</text>\n";
        // Series and legend.
        for (std::size_t s = 0; s < series_.size(); ++s) {
            const PlotSeries& series = series_[s];
            const std::string style = "fill=\"none\" stroke=\"" + svg_escape(series.color) + "\" stroke-width=\"" +
                                      svg_number(series.stroke_width) + "\"" +
                                      (series.dashed ? std::string(" stroke-dasharray=\"6 4\"") : std::string());
            out += "<polyline " + style + " points=\"";
            for (std::size_t i = 0; i < series.x.size(); ++i) {
                out += (i ? " " : "") + svg_number(px(series.x[i])) + "," + svg_number(py(series.y[i]));
            }
            out += "\"/>\n";
            if (series.markers) {
                for (std::size_t i = 0; i < series.x.size(); ++i) {
                    out += "<circle cx=\"" + svg_number(px(series.x[i])) + "\" cy=\"" + svg_number(py(series.y[i])) +
                           "\" r=\"3\" fill=\"" + svg_escape(series.color) + "\"/>\n";
                }
            }
            const double ly = top + 10 + 18 * static_cast<double>(s);
            const double lx = left + plot_w + 12;
            out += "<line x1=\"" + svg_number(lx) + "\" y1=\"" + svg_number(ly) + "\" x2=\"" + svg_number(lx + 24) +
                   "\" y2=\"" + svg_number(ly) + "\" " + style + "/>\n<text x=\"" + svg_number(lx + 30) + "\" y=\"" +
                   svg_number(ly + 4) + "\">" + svg_escape(series.label) + "</text>\n";
        }
        out += "</svg>\n";
        return out;
    }

private:
    std::vector<PlotSeries> series_;
};

}  // namespace sae
