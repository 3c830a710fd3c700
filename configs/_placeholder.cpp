// placeholder so the target exists until the first real source lands; remove when configs has sources
