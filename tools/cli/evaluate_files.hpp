#pragma once
/// \file evaluate_files.hpp
/// Streams activation files in order through an SAE and accumulates an Evaluation
/// (used by `sae eval` and by `sae train` for data.eval_files).

#include <sae/core/evaluation.hpp>
#include <sae/data/shard_source.hpp>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace sae::cli {

template <class Model>
Evaluation evaluate_files(const Model& sae, const std::vector<std::string>& files, const std::string& tensor,
                          Index batch_rows, std::int64_t max_rows) {
    using Scalar = typename Model::scalar_type;
    Evaluation evaluation(sae.d_in(), sae.d_sae());
    Matrix<Scalar> batch;
    for (const std::string& path : files) {
        const ShardReader reader(path, tensor);
        if (reader.cols() != sae.d_in()) {
            throw shape_error(path + ": rows have " + std::to_string(reader.cols()) + " values, the SAE expects d_in = " +
                              std::to_string(sae.d_in()));
        }
        for (Index first = 0; first < reader.rows(); first += batch_rows) {
            if (max_rows > 0 && evaluation.rows() >= max_rows) return evaluation;
            Index count = std::min(batch_rows, reader.rows() - first);
            if (max_rows > 0) count = std::min<Index>(count, static_cast<Index>(max_rows - evaluation.rows()));
            batch.resize(count, reader.cols());
            reader.template copy_rows<Scalar>(first, count, batch);
            try {
                evaluate_batch(sae, batch, evaluation);
            } catch (const numeric_error& e) {
                throw numeric_error(path + ": rows from " + std::to_string(first) + ": " + e.what());
            }
        }
    }
    if (evaluation.rows() == 0) throw io_error(files.empty() ? std::string("no data files given") : files.front() + ": no rows to evaluate");
    return evaluation;
}

}  // namespace sae::cli
