//! webinfer-cpu
