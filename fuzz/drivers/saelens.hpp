#pragma once
// SAELens / sparsify directories (io/saelens.hpp): cfg.json + sae_weights.safetensors
// (SAELens) or sae.safetensors (sparsify). The loaded SAE must run a forward pass.
#include "../driver.hpp"
#include "sae/io/saelens.hpp"

#include <variant>

namespace sae::fuzz {

inline void run_saelens(const Workspace& ws) {
    attempt([&] { (void)read_sae_info(ws.dir()); });
    const AnyAutoencoder<float> any = load_any_sae<float>(ws.dir());
    std::visit(
        [](const auto& sae) {
            if (sae.config().d_in * sae.config().d_sae > (Index{1} << 16)) return;  // keep each input cheap
            const Matrix<float> x = Matrix<float>::Constant(2, sae.config().d_in, 0.5f);
            const Matrix<float> x_hat = sae.forward(x);
            require(x_hat.rows() == 2 && x_hat.cols() == sae.config().d_in, "saelens: forward shape");
        },
        any);
}

inline Driver saelens_driver() {
    return {"saelens", {"cfg.json", "sae_weights.safetensors", "sae.safetensors"}, &run_saelens};
}

}  // namespace sae::fuzz
