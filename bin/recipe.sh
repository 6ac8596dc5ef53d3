# The small-corpus recipe's settings, shared by bin/train-csv.sh and bin/run-commonvoice.sh
# (sourced, with their arguments: source bin/recipe.sh "$@"): each is a default that a ds_*
# variable in the environment overrides.
# What they do and why: docs/training.md, "The recipe for a small corpus".
# Fine-tuning: a source model given as a flag (--load_checkpoint_dir DIR or =DIR) among the
# arguments this file is sourced with, or as ds_load_checkpoint_dir. What fine-tuning changes in
# the recipe (docs/training.md, "Fine-tuning"): a lower learning rate and a budget of ten minutes.
RECIPE_SOURCE_MODEL="${ds_load_checkpoint_dir:-}"
recipe_previous=""
for recipe_argument in "$@"; do
  case "$recipe_argument" in
    --load_checkpoint_dir=* | --load-checkpoint-dir=*) RECIPE_SOURCE_MODEL="${recipe_argument#*=}" ;;
  esac
  case "$recipe_previous" in
    --load_checkpoint_dir | --load-checkpoint-dir) RECIPE_SOURCE_MODEL="$recipe_argument" ;;
  esac
  recipe_previous="$recipe_argument"
done
if [ -n "$RECIPE_SOURCE_MODEL" ]; then
  export ds_learning_rate="${ds_learning_rate:-0.0005}"
  export ds_max_train_seconds="${ds_max_train_seconds:-600}"
fi
export ds_n_hidden="${ds_n_hidden:-256}"
export ds_learning_rate="${ds_learning_rate:-0.002}"
export ds_lr_decay="${ds_lr_decay:-linear}"
export ds_train_batch_size="${ds_train_batch_size:-16}"
export ds_dev_batch_size="${ds_dev_batch_size:-32}"
export ds_test_batch_size="${ds_test_batch_size:-32}"
export ds_shuffle_batches="${ds_shuffle_batches:-1}"
export ds_augment="${ds_augment:-on}"
if [ "${ds_model:-birnn}" = unidirectional ]; then
  export ds_feature_norm="${ds_feature_norm:-none}" # a streaming model cannot wait for the end
fi
export ds_feature_norm="${ds_feature_norm:-speech}"
export ds_epochs="${ds_epochs:-200}"
export ds_validation_step="${ds_validation_step:-1}"
export ds_checkpoint_step="${ds_checkpoint_step:-1}"
export ds_display_step="${ds_display_step:-0}"
export ds_early_stop="${ds_early_stop:-1}"
export ds_es_epochs="${ds_es_epochs:-8}"
export ds_spelling="${ds_spelling:-compound}"
export ds_lm_alpha="${ds_lm_alpha:-0.8}"
export ds_lm_beta="${ds_lm_beta:-4.0}"
export ds_beam_width="${ds_beam_width:-128}"
export ds_bfloat16="${ds_bfloat16:-auto}"
export ds_lm_tune="${ds_lm_tune:-1}"
export ds_validation_lm="${ds_validation_lm:-0}"
