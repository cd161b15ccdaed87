-- Whether the product is on the Online Store sales channel, where the theme blocks show it. A product can be active and
-- still unpublished there (REST published_at null, GraphQL publishedAt null): its link is a 404 to a shopper. Unknown
-- (rows stored before this column, payloads without the field) counts as published, as it was served before.
ALTER TABLE products ADD COLUMN published boolean NOT NULL DEFAULT true;
