//! mmlatent-eval (under construction).
