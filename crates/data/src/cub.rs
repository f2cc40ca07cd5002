//! CUB image–caption in the MMVAE layout (Shi et al., 2019): `train/` and `test/` image folders
//! with one sub-folder per class, and `text_trainvalclasses.txt` / `text_testclasses.txt` with
//! 10 captions per image, one a line, in the order of the images (class folders sorted by name,
//! then files sorted by name). Every caption forms a tuple with its image (caption j belongs to
//! image j / 10).
//!
//! Images are resized to 64×64. Captions are lower-cased and split into words (runs of letters,
//! digits and apostrophes; every other visible character is a token of its own), then encoded
//! as `<bos> w1 … wk <eos> <pad> …` in 32 tokens (k ≤ 30). The vocabulary is
//! `<pad> <bos> <eos> <unk>` followed by the words seen at least 3 times in the training
//! captions, in order of first appearance; other words become `<unk>`.

use crate::{fsutil, image_file};
use anyhow::{bail, ensure, Context, Result};
use mmlatent_core::dataset::{MultimodalDataset, Split};
use mmlatent_core::ModalitySpec;
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Token length of a caption (a multiple of 8, as the text networks need).
pub const MAX_LEN: usize = 32;
const _: () = assert!(MAX_LEN.is_multiple_of(8), "the text networks need a multiple of 8");
/// Side of the resized images.
pub const IMAGE_SIZE: usize = 64;
/// Captions per image.
pub const CAPTIONS_PER_IMAGE: usize = 10;
/// Words seen fewer times than this in training captions become `<unk>`.
pub const MIN_COUNT: usize = 3;
pub const PAD: i64 = 0;
pub const BOS: i64 = 1;
pub const EOS: i64 = 2;
pub const UNK: i64 = 3;
const SPECIALS: [&str; 4] = ["<pad>", "<bos>", "<eos>", "<unk>"];
const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// The caption file of `split` (`train` → trainval classes, `test` → test classes).
pub fn caption_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(if split == "train" { "text_trainvalclasses.txt" } else { "text_testclasses.txt" })
}

/// True when `dir` has the CUB image–caption layout.
pub fn is_cub_dir(dir: &Path) -> bool {
    caption_file(dir, "train").is_file() && dir.join("train").is_dir()
}

/// Lower-cases and splits a caption into words (see the module doc).
pub fn tokenize(caption: &str) -> Vec<String> {
    let mut tokens = vec![];
    let mut word = String::new();
    for ch in caption.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() || ch == '\'' {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !ch.is_whitespace() {
            tokens.push(ch.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// The vocabulary of tokenised training captions: specials, then words seen ≥ `min_count` times.
pub fn build_vocabulary(captions: &[Vec<String>], min_count: usize) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut order: Vec<&str> = vec![];
    for word in captions.iter().flatten() {
        let count = counts.entry(word).or_insert(0);
        if *count == 0 {
            order.push(word);
        }
        *count += 1;
    }
    SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain(order.into_iter().filter(|w| counts[w] >= min_count && !SPECIALS.contains(w)).map(String::from))
        .collect()
}

/// Encodes a tokenised caption as `MAX_LEN` ids: `<bos> words… <eos>` then `<pad>`.
pub fn encode(words: &[String], index: &HashMap<&str, i64>) -> Vec<i64> {
    let mut ids = vec![BOS];
    ids.extend(words.iter().take(MAX_LEN - 2).map(|w| index.get(w.as_str()).copied().unwrap_or(UNK)));
    ids.push(EOS);
    ids.resize(MAX_LEN, PAD);
    ids
}

/// Decodes ids back to text (stops at `<eos>`, skips `<bos>` and `<pad>`).
pub fn decode(ids: &[i64], vocabulary: &[String]) -> String {
    ids.iter()
        .take_while(|&&i| i != EOS)
        .filter(|&&i| i != BOS && i != PAD)
        .map(|&i| vocabulary.get(i as usize).map_or("<unk>", String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The image files of a split folder in order, with their class folder names.
fn list_images(split_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut images = vec![];
    for class_dir in fsutil::list_dir(split_dir)?.into_iter().filter(|p| p.is_dir()) {
        let class = fsutil::file_name(&class_dir).to_string();
        for file in fsutil::list_dir(&class_dir)? {
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
            if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                images.push((class.clone(), file));
            }
        }
    }
    ensure!(!images.is_empty(), "{}: no images in class sub-folders", split_dir.display());
    Ok(images)
}

/// The tokenised captions of a split, checked against the number of images.
fn read_captions(dir: &Path, split: &str, n_images: usize) -> Result<Vec<Vec<String>>> {
    let path = caption_file(dir, split);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read caption file", path.display()))?;
    let captions: Vec<Vec<String>> = text.lines().filter(|l| !l.trim().is_empty()).map(tokenize).collect();
    if captions.len() != CAPTIONS_PER_IMAGE * n_images {
        bail!(
            "{}: {} captions for the {n_images} images of {}, expected {CAPTIONS_PER_IMAGE} per image ({})",
            path.display(),
            captions.len(),
            dir.join(split).display(),
            CAPTIONS_PER_IMAGE * n_images
        );
    }
    Ok(captions)
}

/// Loads a CUB image–caption folder.
pub fn load(dir: &Path) -> Result<MultimodalDataset> {
    let listings = [list_images(&dir.join("train"))?, list_images(&dir.join("test"))?];
    let captions = [read_captions(dir, "train", listings[0].len())?, read_captions(dir, "test", listings[1].len())?];
    let vocabulary = build_vocabulary(&captions[0], MIN_COUNT);
    let index: HashMap<&str, i64> = vocabulary.iter().enumerate().map(|(i, w)| (w.as_str(), i as i64)).collect();
    let classes: Vec<String> =
        listings.iter().flatten().map(|(c, _)| c.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let class_of: HashMap<&str, i64> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as i64)).collect();
    let s = IMAGE_SIZE;
    let mut splits = vec![];
    for (listing, captions) in listings.iter().zip(&captions) {
        let pixels: Vec<Vec<u8>> =
            listing.par_iter().map(|(_, p)| image_file::read_resized_u8(p, 3, s, s)).collect::<Result<_>>()?;
        let images = Tensor::from_slice(&pixels.concat()).view([listing.len() as i64, 3, s as i64, s as i64]);
        let owner: Vec<i64> = (0..captions.len()).map(|j| (j / CAPTIONS_PER_IMAGE) as i64).collect();
        let owner = Tensor::from_slice(&owner);
        let ids: Vec<i64> = captions.iter().flat_map(|c| encode(c, &index)).collect();
        let image_labels: Vec<i64> = listing.iter().map(|(c, _)| class_of[c.as_str()]).collect();
        splits.push(Split {
            items: vec![
                images.index_select(0, &owner),
                Tensor::from_slice(&ids).view([captions.len() as i64, MAX_LEN as i64]),
            ],
            labels: Tensor::from_slice(&image_labels).index_select(0, &owner),
        });
    }
    let test = splits.pop().expect("two splits");
    let train = splits.pop().expect("two splits");
    Ok(MultimodalDataset {
        name: "cub".into(),
        modalities: vec![
            ModalitySpec::image("image", 3, s as i64, s as i64),
            ModalitySpec::text("caption", MAX_LEN as i64, vocabulary.len() as i64),
        ],
        num_classes: classes.len() as i64,
        class_names: classes,
        vocabularies: vec![None, Some(vocabulary)],
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_counts_and_encodes() {
        assert_eq!(tokenize("This bird's wing, is RED."), vec!["this", "bird's", "wing", ",", "is", "red", "."]);
        let caps: Vec<Vec<String>> =
            ["a red bird", "a red wing", "a red beak", "blue"].iter().map(|c| tokenize(c)).collect();
        let vocab = build_vocabulary(&caps, 3);
        assert_eq!(vocab, vec!["<pad>", "<bos>", "<eos>", "<unk>", "a", "red"]);
        let index: HashMap<&str, i64> = vocab.iter().enumerate().map(|(i, w)| (w.as_str(), i as i64)).collect();
        let ids = encode(&tokenize("a red cat"), &index);
        assert_eq!(&ids[..6], &[BOS, 4, 5, UNK, EOS, PAD]);
        assert_eq!(ids.len(), MAX_LEN);
        let long: Vec<String> = (0..50).map(|_| "a".to_string()).collect();
        let ids = encode(&long, &index);
        assert_eq!((ids[0], ids[30], ids[31]), (BOS, 4, EOS));
        assert_eq!(decode(&encode(&tokenize("a red cat"), &index), &vocab), "a red <unk>");
    }
}
