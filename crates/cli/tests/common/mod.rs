//! What the binary's test files share.

/// MLD on the synthetic set (two modalities): two 5-step autoencoders and an 8-step score
/// network, checkpointing every 3 steps; trains in about a second.
pub const TOY_MLD: &str = r#"
seed = 5
[data]
path = "synthetic"
max_train = 96
max_test = 32
[train]
batch_size = 16
steps = 8
lr = 1e-3
checkpoint_every = 3
log_every = 2
sample_every = 3
threads = 1
[model]
kind = "mld"
[model.autoencoder]
latent_dim = 4
width = 4
steps = 5
lr = 1e-3
batch_size = 16
[model.score]
width = 16
time_dim = 8
mults = [1]
groups = 4
[model.sampler]
method = "euler"
steps = 3
"#;
