#pragma once
/// \file cartesian.hpp
/// Everything in sae::cartesian: Cartesian frames and their algebra, Cartesian objects,
/// token selection, the simulation-complexity proxy and Partial Simulation Extrapolation.

#include "sae/cartesian/additive_operations.hpp"
#include "sae/cartesian/biextensional.hpp"
#include "sae/cartesian/cartesian_object.hpp"
#include "sae/cartesian/controllables.hpp"
#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/frame_units.hpp"
#include "sae/cartesian/manageability.hpp"
#include "sae/cartesian/morphism.hpp"
#include "sae/cartesian/multiplicative_operations.hpp"
#include "sae/cartesian/observables.hpp"
#include "sae/cartesian/pse.hpp"
#include "sae/cartesian/random_sampling.hpp"
#include "sae/cartesian/risk_fit.hpp"
#include "sae/cartesian/simulation_complexity.hpp"
#include "sae/cartesian/student_t.hpp"
#include "sae/cartesian/subagents.hpp"
#include "sae/cartesian/token_selection.hpp"
#include "sae/cartesian/world_set.hpp"
