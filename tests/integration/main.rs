//! The integration tests: one binary, one module per concern.
mod cards;
mod cloud;
mod concurrency;
mod crash;
mod defrag;
mod generations;
mod limits;
mod model;
mod node;
mod node_concurrency;
mod node_model;
mod persist;
mod planner;
mod planner_bounds;
mod scenarios;
mod simulation;
