"""Statistics of the office (dataset mbe-core): compute, submit, revise, schedule."""
