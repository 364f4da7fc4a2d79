#pragma once
/// \file eeg.hpp
/// Umbrella header of the EEG module: readers (EDF/EDF+/BDF, EEGLAB), Butterworth
/// design and zero-phase filtering, resampling, segmenting and the denoising protocol.

#include "butterworth.hpp"
#include "denoising.hpp"
#include "edf.hpp"
#include "eeglab.hpp"
#include "filtfilt.hpp"
#include "recording.hpp"
#include "resample.hpp"
#include "segments.hpp"
